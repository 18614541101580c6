//! The last definition parsed, kept with the exact text it came from. A policy reads one
//! domain many times in a row (its disks, then each mode and disk-set change reads it again
//! under the lock), and the text is the same each time until something writes it. Parsing is
//! a function of the text alone, so a parse of the same text can be served as a copy of the
//! last one: callers still read the text afresh each time (from the file, or the driver, under
//! the lock when they change it), and a changed text is parsed anew.

use super::DomainXml;
use crate::xml::XmlError;
use std::sync::Mutex;

/// One parsed definition and the text it was parsed from.
#[derive(Default)]
pub struct ParseMemo {
    last: Mutex<Option<(String, DomainXml)>>,
    /// How many texts were really parsed (failures included), for tests.
    parses: std::sync::atomic::AtomicU64,
}

impl ParseMemo {
    /// An empty memo.
    pub fn new() -> ParseMemo {
        ParseMemo::default()
    }

    /// `f` of `text` parsed (see [`DomainXml::parse`]): the kept parse when `text` is the text it
    /// came from, else a new parse, kept when it succeeds. Errors are never kept: a text that
    /// fails fails again, with `source_name` in its message.
    pub fn with<R>(
        &self,
        text: &str,
        source_name: Option<&str>,
        f: impl FnOnce(&DomainXml) -> R,
    ) -> Result<R, XmlError> {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((kept, dom)) = last.as_ref()
            && kept == text
        {
            return Ok(f(dom));
        }
        self.parses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dom = DomainXml::parse(text, source_name)?;
        let out = f(&dom);
        *last = Some((text.to_string(), dom));
        Ok(out)
    }

    /// Keeps `dom` as the parse of `text`: either `text` parsed (taken and handed back
    /// unchanged), or the definition that wrote `text` (its [`DomainXml::to_xml`]), so that a
    /// caller that wrote a definition reads it back without parsing its own text. What a
    /// definition says (name, disks, modes, sets) and the text it writes do not change in a
    /// round trip through its text; only positions in the source (lines for error messages)
    /// may, and no check of a parse remains to report at them.
    pub fn keep(&self, text: String, dom: DomainXml) {
        *self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((text, dom));
    }

    /// `text` parsed, as [`DomainXml::parse`] would, for a caller that changes it: the kept
    /// parse itself when `text` is its text (the memo is then empty until the next
    /// [`ParseMemo::keep`] or parse), else a new parse.
    pub fn take(&self, text: &str, source_name: Option<&str>) -> Result<DomainXml, XmlError> {
        let mut last = self.last.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if last.as_ref().is_some_and(|(kept, _)| kept == text) {
            return Ok(last.take().expect("checked").1);
        }
        self.parses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        DomainXml::parse(text, source_name)
    }

    /// `text` parsed, as [`DomainXml::parse`] would: a copy of the kept parse of the same text.
    pub fn parse(&self, text: &str, source_name: Option<&str>) -> Result<DomainXml, XmlError> {
        self.with(text, source_name, DomainXml::clone)
    }

    /// How many texts this memo has parsed, rather than copied.
    pub fn parses(&self) -> u64 {
        self.parses.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xml(name: &str, disk: &str) -> String {
        format!(
            "<domain type='qemu'><name>{name}</name><devices><disk type='file' device='disk'>\
             <source file='/x/{disk}.img'/><target dev='{disk}'/></disk></devices></domain>"
        )
    }

    #[test]
    fn the_same_text_is_parsed_once_and_a_changed_text_again() {
        let memo = ParseMemo::new();
        let a = xml("a", "vda");
        let first = memo.parse(&a, None).unwrap();
        for _ in 0..5 {
            assert_eq!(memo.parse(&a, Some("definition of domain 'a'")).unwrap(), first);
        }
        assert_eq!(memo.parses(), 1);
        let changed = xml("a", "vdb");
        let second = memo.parse(&changed, None).unwrap();
        assert_eq!(second.disks()[0].target, "vdb");
        assert_eq!(memo.parses(), 2);
        // Back to the first text: parsed anew (one is kept), and the same as a fresh parse.
        assert_eq!(memo.parse(&a, None).unwrap(), DomainXml::parse(&a, None).unwrap());
        assert_eq!(memo.parses(), 3);
    }

    #[test]
    fn a_text_that_fails_fails_each_time_and_keeps_the_last_good_parse() {
        let memo = ParseMemo::new();
        let good = xml("a", "vda");
        memo.parse(&good, None).unwrap();
        let bad = "<domain><name>a</name>";
        for _ in 0..2 {
            let e = memo.parse(bad, Some("a.xml")).unwrap_err();
            assert!(e.to_string().contains("a.xml"), "{e}");
        }
        assert_eq!(memo.parses(), 3);
        memo.parse(&good, None).unwrap();
        assert_eq!(memo.parses(), 3);
    }

    #[test]
    fn a_definition_changed_as_luavirt_changes_one_reads_back_the_same_as_its_text_parsed() {
        use crate::domain::{DiskMode, DiskSets};
        let text = format!(
            "<domain type='qemu'>\n  <name>a</name>\n  <devices>\n    {}\n    {}\n  </devices>\n</domain>\n",
            "<disk type='file' device='disk'><source file='/x/a.img'/><target dev='vda'/></disk>",
            "<disk type=\"file\" device=\"disk\"><source file='/y/b &amp; c.img'/><target dev='vdb'/></disk>"
        );
        let mut dom = DomainXml::parse(&text, None).unwrap();
        dom.set_uuid("4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
        dom.set_disk_mode("vdb", DiskMode::IndependentNonpersistent).unwrap();
        let mut sets = DiskSets::default();
        sets.add("migrate", "vda");
        dom.set_disk_sets(&sets);
        dom.set_disk_source("vda", "/z/new.qcow2", "qcow2").unwrap();
        let memo = ParseMemo::new();
        memo.keep(dom.to_xml(), dom.clone());
        let kept = memo.parse(&dom.to_xml(), None).unwrap();
        assert_eq!(memo.parses(), 0);
        let parsed = DomainXml::parse(&dom.to_xml(), None).unwrap();
        assert_eq!(kept.to_xml(), parsed.to_xml());
        assert_eq!((kept.name(), kept.uuid()), (parsed.name(), parsed.uuid()));
        assert_eq!(kept.disk_sets(), parsed.disk_sets());
        let strip = |d: &DomainXml| d.disks().into_iter().map(|mut d| (d.line = 0, d).1).collect::<Vec<_>>();
        assert_eq!(strip(&kept), strip(&parsed));
        for t in ["vda", "vdb"] {
            assert_eq!(kept.disk_mode(t), parsed.disk_mode(t));
        }
        // Changed again, both write the same text.
        let (mut k, mut p) = (kept, parsed);
        k.set_disk_mode("vda", DiskMode::IndependentPersistent).unwrap();
        p.set_disk_mode("vda", DiskMode::IndependentPersistent).unwrap();
        assert_eq!(k.to_xml(), p.to_xml());
    }

    #[test]
    fn a_taken_parse_is_not_served_again_until_kept() {
        let memo = ParseMemo::new();
        let a = xml("a", "vda");
        memo.parse(&a, None).unwrap();
        let mut taken = memo.take(&a, None).unwrap();
        assert_eq!(memo.parses(), 1);
        taken.set_uuid("4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
        assert_eq!(memo.parse(&a, None).unwrap().uuid(), None, "the change leaked into the memo");
        assert_eq!(memo.parses(), 2);
        memo.keep(taken.to_xml(), taken.clone());
        assert_eq!(memo.take(&taken.to_xml(), None).unwrap(), taken);
        assert_eq!(memo.parses(), 2);
    }

    #[test]
    fn a_copy_changed_by_its_caller_leaves_the_kept_parse_alone() {
        let memo = ParseMemo::new();
        let a = xml("a", "vda");
        let mut copy = memo.parse(&a, None).unwrap();
        copy.set_uuid("4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
        assert_eq!(memo.parse(&a, None).unwrap().uuid(), None);
    }
}
