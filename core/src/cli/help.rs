//! What `luavirt help VERB` and `luavirt VERB --help` show beyond clap's options: examples for
//! each verb. Shell completions and man pages come from the same clap definition, so they
//! name exactly the verbs and options the parser takes.

use super::args::Cli;
use clap::CommandFactory;

/// Examples per verb. A verb missing here fails the `every_verb_has_examples` test.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "list",
        "luavirt list                     # running domains\nluavirt list --all --name        # every domain, names only\nluavirt list --inactive --json",
    ),
    (
        "define",
        "luavirt define web1.xml          # libvirt domain XML, kept as written\nluavirt dumpxml web1 | luavirt define -",
    ),
    (
        "undefine",
        "luavirt undefine web1\nluavirt undefine web1 --snapshots-metadata --remove-all-storage   # its snapshots and images too",
    ),
    ("edit", "EDITOR=nano luavirt edit web1"),
    ("dumpxml", "luavirt dumpxml web1\nluavirt dumpxml web1 --inactive  # the definition while it runs"),
    ("dominfo", "luavirt dominfo web1\nluavirt dominfo web1 --json"),
    (
        "domstate",
        "luavirt domstate web1\nluavirt domstate web1 --reason   # also a change in progress or left unfinished",
    ),
    (
        "domblklist",
        "luavirt domblklist web1\nluavirt domblklist web1 --details --full   # format, size, backing chain; long paths whole",
    ),
    ("domblkinfo", "luavirt domblkinfo web1 vda --human\nluavirt domblkinfo web1 --all"),
    ("start", "luavirt start web1"),
    ("destroy", "luavirt destroy web1"),
    (
        "shutdown",
        "luavirt shutdown web1\nluavirt shutdown web1 --timeout 60 --destroy   # wait a minute, then pull the plug",
    ),
    ("reboot", "luavirt reboot web1"),
    ("suspend", "luavirt suspend web1"),
    ("resume", "luavirt resume web1"),
    (
        "attach-disk",
        "luavirt attach-disk web1 /srv/data.qcow2 vdb\nluavirt attach-disk web1 /srv/scratch.raw vdc --config --disk-mode independent-nonpersistent",
    ),
    (
        "detach-disk",
        "luavirt detach-disk web1 vdb\nluavirt detach-disk web1 vdb --print-xml   # show it, change nothing",
    ),
    (
        "disk-mode",
        "luavirt disk-mode web1 vdb                            # print it\nluavirt disk-mode web1 vdb independent-nonpersistent  # set it\nluavirt disk-mode web1 vdb independent-persistent --config --live   # and use it now",
    ),
    (
        "diskset",
        "luavirt diskset add web1 vda                 # the default set: selected\nluavirt diskset add web1 /srv/b.raw --set migrate\nluavirt diskset list web1 --set migrate\nluavirt diskset names web1",
    ),
    (
        "snapshot-create-as",
        "luavirt snapshot-create-as web1 s1 --print-plan   # what it would take, and why\nluavirt snapshot-create-as web1 s1 --disk-only --diskspec vda,snapshot=external\nluavirt snapshot-create-as web1 nightly --disk-set snapshot",
    ),
    (
        "snapshot-create",
        "luavirt snapshot-create web1 snap.xml\nluavirt snapshot-create web1      # named after the time",
    ),
    ("snapshot-list", "luavirt snapshot-list web1\nluavirt snapshot-list web1 --tree"),
    ("snapshot-dumpxml", "luavirt snapshot-dumpxml web1 s1"),
    ("snapshot-info", "luavirt snapshot-info web1 s1\nluavirt snapshot-info web1 --current"),
    ("snapshot-current", "luavirt snapshot-current web1 --name"),
    ("snapshot-parent", "luavirt snapshot-parent web1 s2"),
    ("snapshot-edit", "luavirt snapshot-edit web1 s1"),
    ("snapshot-revert", "luavirt snapshot-revert web1 s1\nluavirt snapshot-revert web1 --current --running"),
    ("snapshot-delete", "luavirt snapshot-delete web1 s1\nluavirt snapshot-delete web1 s1 --children"),
    ("blockcopy", "luavirt blockcopy web1 vda /srv/copy.qcow2 --wait --pivot"),
    ("blockpull", "luavirt blockpull web1 vda --wait\nluavirt blockpull web1 vda --base /srv/base.qcow2 --wait"),
    ("blockcommit", "luavirt blockcommit web1 vda --wait --pivot"),
    ("blockjob", "luavirt blockjob web1 vda          # show it\nluavirt blockjob web1 vda --abort"),
    (
        "migrate",
        "luavirt migrate web1 'qemu:///session?state=/srv/b' --print-plan\nluavirt migrate web1 'qemu:///session?state=/srv/b' --live --migrate-disks vda --blank-disks vdb\nluavirt migrate web1 qemu+ssh://root@hostb/session --live --with-disk-set --tunnelled",
    ),
    ("domjobabort", "luavirt domjobabort web1"),
    ("save", "luavirt save web1 /srv/web1.save\nluavirt save web1 /srv/web1.save --disk-set selected --live"),
    ("restore", "luavirt restore /srv/web1.save\nluavirt restore /srv/web1.save --paused"),
    ("recover", "luavirt recover web1"),
    (
        "run",
        "luavirt run nightly.lua web1\nluavirt run --dry-run nightly.lua       # what it would change\nluavirt run -e 'for _, d in ipairs(luavirt.connect():domains()) do print(d:name()) end'\necho 'print(#require(\"luavirt\").connect():domains())' | luavirt run -\nluavirt run -c qemu:///session -c qemu+ssh://root@hostb/session policy.lua   # each host in turn",
    ),
    (
        "serve",
        "luavirt -c qemu+ssh://root@hostb/session list   # ssh runs the server on hostb\nssh root@hostb luavirt serve --stdio   # what it runs there: not for a terminal",
    ),
    ("repl", "luavirt repl\nlua> conn = luavirt.connect()\nlua> conn:domains()"),
    ("test", "luavirt test scripts/\nluavirt test policy_test.lua"),
    ("watch", "luavirt watch --policy-dir /etc/luavirt/policies\nluavirt watch --once --dry-run"),
    ("hooks", "luavirt hooks list --policy-dir scripts/policies"),
    ("drivers", "luavirt drivers\nLUAVIRT_DRIVER_DIR=/opt/drivers luavirt drivers --json"),
    (
        "driver-check",
        "luavirt driver-check ./libmydriver.so\nluavirt driver-check ./libmydriver.so --uri 'mine:///tmp/x' --writable",
    ),
    (
        "completions",
        "luavirt completions bash > /etc/bash_completion.d/luavirt\nluavirt completions zsh > ~/.zfunc/_luavirt\nluavirt completions fish > ~/.config/fish/completions/luavirt.fish",
    ),
    ("man", "luavirt man /usr/local/share/man/man1   # luavirt.1 and luavirt-VERB.1\nman luavirt-snapshot-create-as"),
];

/// The examples of `verb`, if it has some.
fn examples(verb: &str) -> Option<&'static str> {
    EXAMPLES.iter().find(|(v, _)| *v == verb).map(|(_, e)| *e)
}

/// The whole command line definition, with each verb's examples under its help.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command();
    let verbs: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for verb in verbs {
        if let Some(text) = examples(&verb) {
            let indented: String = text.lines().map(|l| format!("  {l}\n")).collect();
            cmd = cmd.mut_subcommand(verb, |s| s.after_help(format!("Examples:\n{indented}")));
        }
    }
    cmd.about("Hypervisor driver host: virsh-like commands and Lua scripts over disk sets, snapshots, block jobs and migration")
        .after_help("`luavirt help VERB` or `luavirt VERB --help` shows a verb's options and examples.")
}

/// Writes the completion script for `shell` to `out`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut command(), "luavirt", out);
}

/// Writes `luavirt.1` and one `luavirt-VERB.1` per verb into `dir`; returns the files.
pub fn man_pages(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut cmd = command();
    // Built, each verb carries the global options (-c, --json, -v) that its page lists.
    cmd.build();
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut write = |name: String, page: clap::Command| -> std::io::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut text = Vec::new();
        clap_mangen::Man::new(page).render(&mut text)?;
        std::fs::write(&path, &text)?;
        // Pages for everyone to read, whatever the umask.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        written.push(path);
        Ok(())
    };
    write("luavirt".to_string(), cmd.clone())?;
    // `help` is clap's own verb: `luavirt help VERB` shows what each page says.
    for verb in cmd.get_subcommands().filter(|v| v.get_name() != "help") {
        let name = format!("luavirt-{}", verb.get_name());
        let page = verb.clone().display_name(name.clone()).bin_name(format!("luavirt {}", verb.get_name()));
        write(name, page)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_verb_has_examples() {
        let cmd = super::command();
        let bare: Vec<&str> =
            cmd.get_subcommands().map(|s| s.get_name()).filter(|v| super::examples(v).is_none()).collect();
        assert!(bare.is_empty(), "verbs without examples in cli/help.rs: {bare:?}");
        cmd.debug_assert();
    }

    /// The words of a shell command line: spaces split, quotes group.
    fn words(line: &str) -> Vec<String> {
        let (mut out, mut word, mut quote, mut any) = (Vec::new(), String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (None, '\'' | '"') => (quote, any) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (None, ' ') if any => {
                    out.push(std::mem::take(&mut word));
                    any = false;
                }
                (None, ' ') => {}
                (_, c) => (word, any) = (word + &c.to_string(), true),
            }
        }
        out.extend(any.then_some(word));
        out
    }

    #[test]
    fn every_example_parses() {
        for (verb, text) in super::EXAMPLES {
            for line in text.lines() {
                // The luavirt command of the line: from `luavirt ` to a comment, pipe or redirect.
                let Some(start) = line.find("luavirt ").filter(|&i| i == 0 || line[..i].ends_with(' ')) else {
                    continue;
                };
                let command = line[start..].split(" #").next().unwrap().split(['>', '|']).next().unwrap();
                let parsed = super::command().try_get_matches_from(words(command));
                assert!(parsed.is_ok(), "{verb}: {command}: {}", parsed.unwrap_err());
            }
        }
    }
}
