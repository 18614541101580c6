use super::*;

/// An HVM guest with every kind of value, comments in lists and after values, both quote
/// styles, `;` between settings, `+=`, a nested list and trailing commas.
pub const HVM: &str = r#"# Web server (HVM)
type = "hvm"
name = "web01"
uuid = "3b5e4f1a-9c2d-4e8f-a1b2-c3d4e5f60718"
memory = 1024 ; maxmem = 2048
vcpus = 2
boot = "cd"
disk = [
    'format=qcow2, vdev=hda, access=rw, target=/srv/xen/web01.qcow2',   # system
    "/srv/xen/web01-data.raw,raw,hdb,w",
    # the installer
    '/srv/iso/debian.iso,,hdc,cdrom',
    ',hdd:cdrom,r',
]
vif = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' , ]
vnuma = [ [ "pnode=0", "size=512", "vcpus=0", "vdistances=10,20" ],
          [ "pnode=1", "size=512", "vcpus=1", "vdistances=20,10" ], ]
extra = 'console=hvc0'
extra += " quiet"
on_crash = 'restart'	# a tab before this comment
"#;

/// A PV guest with old-style disk prefixes and a last line without a newline.
pub const PV: &str = "name = \"db02\"\nkernel = \"/boot/vmlinuz\"; ramdisk = \"/boot/initrd.img\"\nroot = \"/dev/xvda1 ro\"\ndisk = [ 'phy:/dev/vg0/db02,xvda,w', 'tap:aio:/srv/db02-swap.img,xvdb,w', \"iscsi:iqn.2001-05.com.example:db,xvdc,w\" ]\nvcpus=1";

/// A PVH guest: an empty list, escapes, a number in hex, a list over lines with comments
/// between items and commas.
pub const PVH: &str = "type = 'pvh'\nname = 'api\\'s'\nkernel = \"/boot/vmlinuz-\\t1\"\nmaxvcpus = 0x1f\npci = []\ndisk = [ 'vdev=xvda, target=/srv/a,b.img' # comma in the path\n       , # between\n       'xvdb,raw,,target=/srv/b.img'\n]\n";

fn parse(text: &str) -> XlConfig {
    XlConfig::parse(text.as_bytes(), "t.cfg").unwrap_or_else(|e| panic!("{e}"))
}

fn strings(c: &XlConfig, key: &str) -> Vec<String> {
    c.strings(key).unwrap().iter().map(|i| i.atom.text.clone()).collect()
}

#[test]
fn configs_read_as_xl_reads_them_and_write_back_byte_identical() {
    for text in [HVM, PV, PVH] {
        let c = parse(text);
        assert_eq!(c.bytes(), text.as_bytes());
    }
    let c = parse(HVM);
    assert_eq!(c.get("name").unwrap().unwrap().0, "web01");
    assert_eq!(c.get("maxmem").unwrap().unwrap().0, "2048");
    assert_eq!(c.get("extra").unwrap().unwrap().0, "console=hvc0 quiet");
    assert_eq!(c.get("kernel").unwrap(), None);
    assert_eq!(
        strings(&c, "disk"),
        [
            "format=qcow2, vdev=hda, access=rw, target=/srv/xen/web01.qcow2",
            "/srv/xen/web01-data.raw,raw,hdb,w",
            "/srv/iso/debian.iso,,hdc,cdrom",
            ",hdd:cdrom,r"
        ]
    );
    let vnuma = c.settings().iter().find(|s| s.key == "vnuma").unwrap();
    let Value::List(l) = &vnuma.value else { panic!() };
    assert!(matches!(&l.items[1], Value::List(inner) if inner.items.len() == 4));
    assert!(c.strings("vnuma").unwrap_err().message.contains("must be a quoted string, and this is a list"));
    let pv = parse(PV);
    assert_eq!(
        (pv.get("ramdisk").unwrap().unwrap().0, pv.get("vcpus").unwrap().unwrap().0),
        ("/boot/initrd.img".into(), "1".into())
    );
    assert_eq!(strings(&pv, "disk").len(), 3);
    let pvh = parse(PVH);
    assert_eq!(pvh.get("name").unwrap().unwrap().0, "api's");
    assert_eq!(pvh.get("kernel").unwrap().unwrap().0, "/boot/vmlinuz-\t1");
    assert_eq!(pvh.get("maxvcpus").unwrap().unwrap().0, "0x1f");
    assert_eq!(strings(&pvh, "pci"), Vec::<String>::new());
    assert_eq!(strings(&pvh, "disk"), ["vdev=xvda, target=/srv/a,b.img", "xvdb,raw,,target=/srv/b.img"]);
}

#[test]
fn the_last_assignment_wins_and_appends_follow_it() {
    let c = parse("disk = [ 'a' ]\ndisk += [ 'b' ]\nname = 'x'\ndisk = [ 'c' ]\ndisk += [ 'd', ]\nname += 'y'\n");
    assert_eq!(strings(&c, "disk"), ["c", "d"]);
    let items = c.strings("disk").unwrap();
    assert_eq!((items[0].setting, items[1].setting, items[1].index), (3, 4, 0));
    assert_eq!(c.get("name").unwrap().unwrap().0, "xy");
    assert_eq!(strings(&parse("disk += [ 'b' ]\n"), "disk"), ["b"]);
}

fn error(text: &str) -> String {
    XlConfig::parse(text.as_bytes(), "bad.cfg").unwrap_err().to_string()
}

#[test]
fn syntax_errors_name_the_file_line_and_column() {
    let cases = [
        ("name = \"x\"\nName = \"y\"\n", "bad.cfg:2:1: xl setting names are lower case"),
        ("name = \"x\"\r\n", "bad.cfg:1:11: a carriage return"),
        ("\u{feff}name = 'x'\n", "bad.cfg:1:1: the file starts with a byte order mark"),
        ("disk = [ 'a',\n  'b\n]\n", "bad.cfg:2:3: this string is not closed on its line"),
        ("x = [ 1,, 2 ]\n", "bad.cfg:1:9: expected a list item (xl allows no empty items), but found ','"),
        ("x = [,]\n", "bad.cfg:1:6: expected a list item"),
        (
            "x =\n1\n",
            "bad.cfg:1:4: expected the value of x on its line (a string, a number or a list), but found the end of the line",
        ),
        (
            "x = 1 y = 2\n",
            "bad.cfg:1:7: expected the end of the setting x (one setting per line, or ';' between two), but found the name y",
        ),
        ("x = 'a' 'b'\n", "bad.cfg:1:9: expected the end of the setting x"),
        ("x = -1\n", "bad.cfg:1:5: unexpected character '-'; xl numbers cannot be negative"),
        ("x = [ 'a' ]\nx += 'b'\n", "bad.cfg:2:6: x += adds a string to a list (line 1)"),
        ("x = 'a\\qb'\n", "bad.cfg:1:7: xl knows no escape \\q"),
        ("x = 'a\\x41'\n", "bad.cfg:1:7: xl's parser refuses \\x escapes and mis-reads octal ones"),
        ("x = 'a\\101'\n", "bad.cfg:1:7: xl's parser refuses \\x escapes and mis-reads octal ones"),
        ("x = 'é' = 2\n", "bad.cfg:1:9: expected the end of the setting x"),
        ("= 1\n", "bad.cfg:1:1: expected a setting (name = value), but found '='"),
        ("x = [ 'a' \n", "bad.cfg:2:1: expected ',' or ']' after a list item, but found the end of the file"),
        ("x = 'unterminated", "bad.cfg:1:5: this string is not closed"),
    ];
    for (text, want) in cases {
        let got = error(text);
        assert!(got.starts_with(want), "{text:?}:\n got  {got}\n want {want}");
    }
}

#[test]
fn a_replaced_item_changes_only_its_own_bytes_in_its_own_quotes() {
    let c = parse(HVM);
    let items = c.strings("disk").unwrap();
    let (s, i) = (items[1].setting, items[1].index);
    let out = c.replace_item(s, i, "/srv/xen/web01-data.s1,qcow2,hdb,w").unwrap();
    assert_eq!(
        String::from_utf8(out.bytes().to_vec()).unwrap(),
        HVM.replace("\"/srv/xen/web01-data.raw,raw,hdb,w\"", "\"/srv/xen/web01-data.s1,qcow2,hdb,w\"")
    );
    let out = c.replace_item(s, 0, "target=/it's \"quoted\"\\").unwrap();
    assert!(String::from_utf8_lossy(out.bytes()).contains("'target=/it\\'s \"quoted\"\\\\',   # system"));
    assert_eq!(strings(&out, "disk")[0], "target=/it's \"quoted\"\\");
}

#[test]
fn removed_items_take_their_separator_and_their_line() {
    let c = parse(HVM);
    let s = c.strings("disk").unwrap()[0].setting;
    // Alone on its line with a comment: the whole line goes.
    let out = c.remove_item(s, 0).unwrap();
    assert_eq!(
        String::from_utf8_lossy(out.bytes()),
        HVM.replace("    'format=qcow2, vdev=hda, access=rw, target=/srv/xen/web01.qcow2',   # system\n", "")
    );
    // The last item of a one-line list: the comma before it goes.
    let pv = parse(PV);
    let s = pv.strings("disk").unwrap()[0].setting;
    let out = pv.remove_item(s, 2).unwrap();
    assert_eq!(String::from_utf8_lossy(out.bytes()), PV.replace(", \"iscsi:iqn.2001-05.com.example:db,xvdc,w\"", ""));
    let out = pv.remove_item(s, 0).unwrap();
    assert_eq!(String::from_utf8_lossy(out.bytes()), PV.replace("'phy:/dev/vg0/db02,xvda,w', ", ""));
    // The only item.
    let one = parse("disk = [ 'a' ]\n");
    assert_eq!(one.remove_item(0, 0).unwrap().bytes(), b"disk = [  ]\n");
    // Commas and comments on other lines than the item (found by fuzzing): other comments stay.
    let cases = [
        ("x = [ 'a' # about a\n  , # trailing\n]\n", 0, "x = [  # about a\n   # trailing\n]\n"),
        ("x = [\n  'a', # about a\n  'b'\n]\n", 1, "x = [\n  'a' # about a\n]\n"),
        ("x = [\n  'a' # about a\n  , 'b' ]\n", 1, "x = [\n  'a' # about a\n    ]\n"),
    ];
    for (text, index, want) in cases {
        let out = parse(text).remove_item(0, index).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(String::from_utf8_lossy(out.bytes()), want, "{text:?}");
    }
}

#[test]
fn appended_items_follow_the_list_layout() {
    let cases = [
        ("disk = [ 'a' ]\n", "disk = [ 'a', 'new' ]\n"),
        ("disk = [ \"a\", ]\n", "disk = [ \"a\", \"new\", ]\n"),
        ("disk = []\n", "disk = [ 'new' ]\n"),
        ("disk = [\n    'a',\n]\n", "disk = [\n    'a',\n    'new',\n]\n"),
        ("disk = [\n    'a'\n    ]\n", "disk = [\n    'a',\n    'new'\n    ]\n"),
    ];
    for (text, want) in cases {
        let c = parse(text);
        assert_eq!(String::from_utf8_lossy(c.append_item(0, "new").unwrap().bytes()), want, "{text:?}");
    }
    let c = parse("name = 'x'");
    assert_eq!(
        String::from_utf8_lossy(c.append_list_setting("disk", &["/a,,xvda".into()]).unwrap().bytes()),
        "name = 'x'\ndisk = [ '/a,,xvda' ]\n"
    );
}

#[test]
fn quoting_escapes_what_xl_would_read_otherwise() {
    for v in ["plain", "it's", "say \"hi\"", "back\\slash", "new\nline", "tab\there", "bell\u{7}", "nul\u{1}"] {
        for q in [b'\'', b'"'] {
            let text = format!("x = {}\n", edit::quote(v, q));
            assert_eq!(parse(&text).get("x").unwrap().unwrap().0, v, "{text}");
        }
    }
}
