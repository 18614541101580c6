//! XML character escaping: the five predefined entities and character references.

/// Decodes entity and character references in `raw`. Attribute values also get their
/// tab, newline and carriage return turned into spaces, as XML requires.
pub fn unescape(raw: &str, attribute: bool) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        if c != b'&' {
            out.push(if attribute { ' ' } else { c as char });
            rest = &rest[i + 1..];
            continue;
        }
        let end = rest[i..]
            .find(';')
            .ok_or_else(|| format!("'&' without ';' in {raw:?}; write '&amp;' for a literal '&'"))?;
        let name = &rest[i + 1..i + end];
        out.push(decode_reference(name)?);
        rest = &rest[i + end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The character named by a reference body (`amp`, `#65`, `#x41`).
pub fn decode_reference(name: &str) -> Result<char, String> {
    let c = match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let num = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse::<u32>().ok()
            } else {
                return Err(format!(
                    "undefined entity '&{name};'; only &amp; &lt; &gt; &quot; &apos; and character references are allowed"
                ));
            };
            return num.and_then(char::from_u32).ok_or_else(|| format!("invalid character reference '&{name};'"));
        }
    };
    Ok(c)
}

/// Escapes text content.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value to be written between `quote` characters.
pub fn escape_attr(s: &str, quote: char) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' if quote == '"' => out.push_str("&quot;"),
            '\'' if quote == '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_references() {
        assert_eq!(unescape("a &amp; b &#x41;&#66; &lt;", false).unwrap(), "a & b AB <");
        assert_eq!(unescape("x\ny", true).unwrap(), "x y");
        assert!(unescape("&nbsp;", false).unwrap_err().contains("undefined entity"));
        assert!(unescape("a & b", false).is_err());
        assert_eq!(unescape(&escape_attr("it's \"x\" & <y>", '\''), true).unwrap(), "it's \"x\" & <y>");
    }
}
