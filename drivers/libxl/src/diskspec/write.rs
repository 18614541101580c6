//! Writing disk specs. A changed target or format rewrites only that parameter's value (a
//! positional target that could be misread, say with a comma, moves to `target=` at the
//! end); any other change, or one the small edit cannot express, writes the whole spec in
//! the documentation's `key=value` form with `target=` last. Whatever is written is parsed
//! again and must describe exactly the disk wanted.

use super::{Disk, DiskSpec, FLAGS, Format, Slot, word};

/// `disk` as a spec in `key=value` form, target last.
pub fn canonical(disk: &Disk) -> String {
    let mut parts: Vec<String> = Vec::new();
    if disk.format != Format::Empty {
        parts.push(format!("format={}", disk.format.name()));
    }
    parts.push(format!("vdev={}", disk.vdev));
    parts.push(format!("access={}", if disk.readwrite { "rw" } else { "ro" }));
    if disk.cdrom {
        parts.push("devtype=cdrom".into());
    }
    let mut kv = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            parts.push(format!("{k}={v}"));
        }
    };
    kv("backend", &disk.backend_domain);
    kv("backendtype", &disk.backendtype.map(|b| b.name().to_string()));
    kv("script", &disk.script);
    kv("specification", &disk.specification);
    kv("grant_usage", &disk.grant_usage.map(|g| if g { "1" } else { "0" }.to_string()));
    kv("colo-host", &disk.colo_host);
    kv("colo-port", &disk.colo_port.map(|p| p.to_string()));
    kv("colo-export", &disk.colo_export);
    kv("active-disk", &disk.active_disk);
    kv("hidden-disk", &disk.hidden_disk);
    if disk.direct_io_safe {
        parts.push("direct-io-safe".into());
    }
    let mut flag = |on: Option<bool>, yes: &str, no: &str| {
        if let Some(on) = on {
            parts.push(if on { yes } else { no }.to_string());
        }
    };
    flag(disk.discard, "discard", "no-discard");
    flag(disk.colo, "colo", "no-colo");
    flag(disk.trusted, "trusted", "untrusted");
    if let Some(t) = &disk.target {
        parts.push(format!("target={t}"));
    }
    parts.join(", ")
}

/// Whether `path` reads back as itself when written as a positional target.
fn safe_positional(path: &str) -> bool {
    !path.is_empty()
        && !path.contains([',', '='])
        && !path.starts_with([' ', '\t', '\n'])
        && !FLAGS.contains(&path)
        && !path[word(path)..].starts_with(':')
}

impl DiskSpec {
    /// The spec for `want`: this one's text when nothing changes, a small edit when only the
    /// target or the format change, else [`canonical`]. An error when no text describes
    /// `want` (a target ending in a comma, say).
    pub fn rewrite(&self, want: &Disk) -> Result<String, String> {
        if *want == self.disk {
            return Ok(self.text.clone());
        }
        let mut only_target_format = self.disk.clone();
        only_target_format.target.clone_from(&want.target);
        only_target_format.format = want.format;
        if only_target_format == *want
            && let Some(text) = self.edited(want)
            && DiskSpec::parse(&text).is_ok_and(|s| s.disk == *want)
        {
            return Ok(text);
        }
        let text = canonical(want);
        match DiskSpec::parse(&text) {
            Ok(s) if s.disk == *want => Ok(text),
            _ => Err(format!("disk {}: no xl disk spec describes this disk (wrote '{text}')", want.vdev)),
        }
    }

    /// The text with the target and format of `want` put in place of this spec's.
    fn edited(&self, want: &Disk) -> Option<String> {
        let mut edits: Vec<(usize, usize, String)> = Vec::new();
        let mut tail = None;
        if want.target != self.disk.target {
            let path = want.target.as_deref()?;
            match self.param(&[Slot::Target, Slot::TargetKey]) {
                Some(p) if p.slot == Slot::TargetKey || safe_positional(path) => {
                    edits.push((p.start, p.end, path.to_string()));
                }
                Some(p) => {
                    edits.push((p.start, p.end, String::new()));
                    tail = Some(path);
                }
                None => tail = Some(path),
            }
        }
        if want.format != self.disk.format && want.format != Format::Empty {
            match self.param(&[Slot::Format, Slot::FormatKey, Slot::FormatPrefix]) {
                Some(p) => edits.push((p.start, p.end, want.format.name().to_string())),
                None => edits.push((0, 0, format!("format={},", want.format.name()))),
            }
        }
        edits.sort_by_key(|e| std::cmp::Reverse(e.0));
        let mut text = self.text.clone();
        for (start, end, with) in edits {
            text.replace_range(start..end, &with);
        }
        if let Some(path) = tail {
            if !text.is_empty() && !text.ends_with(',') {
                text.push(',');
            }
            text.push_str("target=");
            text.push_str(path);
        }
        Some(text)
    }
}
