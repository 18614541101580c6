//! Connection URIs in libvirt's shape: `scheme://[host]/path[?key=value&...]`, such as
//! `qemu:///session`, `qemu:///session?state=/srv/b` or `vmx:///srv/datastore1`.

use std::fmt;

/// A parsed connection URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// The scheme, lower case (`qemu`).
    pub scheme: String,
    /// The host part (empty for local connections).
    pub host: String,
    /// The path, percent-decoded (`/session`).
    pub path: String,
    /// Query parameters in order, percent-decoded; a key may repeat.
    pub query: Vec<(String, String)>,
    text: String,
}

/// Why a URI could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Invalid connection URI {uri:?}: {reason}; expected the form scheme:///path, like qemu:///session")]
pub struct UriError {
    /// The text given.
    pub uri: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Uri {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Uri, UriError> {
        let err = |reason: &str| UriError { uri: text.to_string(), reason: reason.to_string() };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| err("no \"://\" after the scheme"))?;
        if scheme.is_empty() || !scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
            return Err(err("the scheme must be letters, digits, '+', '-' or '.'"));
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (host, path) = match before_query.find('/') {
            Some(i) => (&before_query[..i], &before_query[i..]),
            None => (before_query, ""),
        };
        let mut params = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            params.push((decode(k).map_err(|e| err(&e))?, decode(v).map_err(|e| err(&e))?));
        }
        Ok(Uri {
            scheme: scheme.to_ascii_lowercase(),
            host: decode(host).map_err(|e| err(&e))?,
            path: decode(path).map_err(|e| err(&e))?,
            query: params,
            text: text.to_string(),
        })
    }

    /// The first value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The URI as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(|| format!("incomplete escape at {:?}", &s[i..]))?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad escape %{hex}"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escapes do not decode to UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libvirt_style_uris() {
        let u = Uri::parse("qemu:///session?state=/srv/b%20c&x=1").unwrap();
        assert_eq!((u.scheme.as_str(), u.host.as_str(), u.path.as_str()), ("qemu", "", "/session"));
        assert_eq!(u.param("state"), Some("/srv/b c"));
        assert_eq!(u.param("x"), Some("1"));
        let v = Uri::parse("vmx:///srv/ds1?datastore.ds2=/mnt/ds2").unwrap();
        assert_eq!(v.path, "/srv/ds1");
        assert_eq!(v.param("datastore.ds2"), Some("/mnt/ds2"));
    }

    #[test]
    fn rejects_uris_without_scheme() {
        assert!(Uri::parse("/var/lib").unwrap_err().to_string().contains("no \"://\""));
        assert!(Uri::parse("://x").is_err());
    }
}
