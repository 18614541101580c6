//! Typed parameter lists, as libvirt's `virTypedParameter` arrays: ordered, and a key may
//! repeat (`migrate_disks=vda`, `migrate_disks=vdb`), so a list is not a map.

use crate::abi::{self, LvParam, LvStr};

/// One value of a typed parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Signed integer.
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// Floating point.
    Double(f64),
    /// Boolean.
    Bool(bool),
    /// UTF-8 string.
    String(String),
}

/// A parameter list as the ABI passes it, borrowing the strings of its [`Params`].
pub struct AbiParams<'a> {
    list: Vec<LvParam>,
    _strings: std::marker::PhantomData<&'a Params>,
}

impl AbiParams<'_> {
    /// The first parameter, for the ABI call.
    pub fn as_ptr(&self) -> *const LvParam {
        self.list.as_ptr()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// An ordered list of `(key, value)` pairs whose keys may repeat.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params {
    entries: Vec<(String, Value)>,
}

impl Params {
    /// An empty list.
    pub fn new() -> Params {
        Params::default()
    }

    /// Appends `key = value`; an existing `key` stays (keys may repeat).
    pub fn push(&mut self, key: impl Into<String>, value: Value) -> &mut Params {
        self.entries.push((key.into(), value));
        self
    }

    /// Appends a string.
    pub fn push_str(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Params {
        self.push(key, Value::String(value.into()))
    }

    /// All entries in order.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.entries.iter().filter(move |(k, _)| k == key).map(|(_, v)| v)
    }

    /// The first value of `key` if it is a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// Every string value of `key`, in order.
    pub fn get_strs<'a>(&'a self, key: &'a str) -> Vec<&'a str> {
        self.get_all(key).filter_map(|v| if let Value::String(s) = v { Some(s.as_str()) } else { None }).collect()
    }

    /// The first value of `key` as u64 (from a UInt, or a non-negative Int).
    pub fn get_u64(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::UInt(n) => Some(*n),
            Value::Int(n) if *n >= 0 => Some(*n as u64),
            _ => None,
        }
    }

    /// The first value of `key` as i64 (from an Int, or a UInt that fits).
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            Value::Int(n) => Some(*n),
            Value::UInt(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }

    /// The first value of `key` if it is a boolean.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Splits a list that holds groups: the entries before the first `start` key, then one
    /// list per `start` key, from it to the next (`disk=vda action=copy disk=vdb ...`).
    pub fn groups(&self, start: &str) -> (Params, Vec<Params>) {
        let mut head = Params::new();
        let mut groups: Vec<Params> = Vec::new();
        for (k, v) in &self.entries {
            if k == start {
                groups.push(Params::new());
            }
            match groups.last_mut() {
                Some(g) => g.push(k.clone(), v.clone()),
                None => head.push(k.clone(), v.clone()),
            };
        }
        (head, groups)
    }

    /// Appends every entry of `other`.
    pub fn extend(&mut self, other: &Params) -> &mut Params {
        self.entries.extend(other.entries.iter().cloned());
        self
    }

    /// Borrows the list as ABI parameters; the result cannot outlive `self`, whose strings
    /// it points to.
    pub fn to_abi(&self) -> AbiParams<'_> {
        let list = self
            .entries
            .iter()
            .map(|(k, v)| {
                let mut p = LvParam {
                    key: LvStr::from_str(k),
                    kind: 0,
                    reserved: 0,
                    int_value: 0,
                    uint_value: 0,
                    double_value: 0.0,
                    string_value: LvStr::EMPTY,
                };
                match v {
                    Value::Int(n) => (p.kind, p.int_value) = (abi::LV_PARAM_INT, *n),
                    Value::UInt(n) => (p.kind, p.uint_value) = (abi::LV_PARAM_UINT, *n),
                    Value::Double(d) => (p.kind, p.double_value) = (abi::LV_PARAM_DOUBLE, *d),
                    Value::Bool(b) => (p.kind, p.int_value) = (abi::LV_PARAM_BOOL, *b as i64),
                    Value::String(s) => (p.kind, p.string_value) = (abi::LV_PARAM_STRING, LvStr::from_str(s)),
                }
                p
            })
            .collect();
        AbiParams { list, _strings: std::marker::PhantomData }
    }

    /// Copies ABI parameters into a list. Entries of an unknown kind are skipped.
    ///
    /// # Safety
    /// `params` must point to `count` valid `LvParam`s whose strings are readable.
    pub unsafe fn from_abi(params: *const LvParam, count: usize) -> Params {
        let mut out = Params::new();
        if params.is_null() {
            return out;
        }
        // SAFETY: the caller promises `count` readable entries.
        for p in unsafe { std::slice::from_raw_parts(params, count) } {
            let key = unsafe { p.key.to_string_lossy() };
            let value = match p.kind {
                abi::LV_PARAM_INT => Value::Int(p.int_value),
                abi::LV_PARAM_UINT => Value::UInt(p.uint_value),
                abi::LV_PARAM_DOUBLE => Value::Double(p.double_value),
                abi::LV_PARAM_BOOL => Value::Bool(p.int_value != 0),
                abi::LV_PARAM_STRING => Value::String(unsafe { p.string_value.to_string_lossy() }),
                _ => continue,
            };
            out.push(key, value);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_keep_order_and_cross_the_abi() {
        let mut p = Params::new();
        p.push_str("migrate_disks", "vda")
            .push("bandwidth", Value::UInt(5))
            .push_str("migrate_disks", "vdb")
            .push("live", Value::Bool(true))
            .push("offset", Value::Int(-3))
            .push("ratio", Value::Double(0.5));
        let abi = p.to_abi();
        let back = unsafe { Params::from_abi(abi.as_ptr(), abi.len()) };
        assert_eq!(back, p);
        assert_eq!(back.get_strs("migrate_disks"), vec!["vda", "vdb"]);
        assert_eq!(back.get_u64("bandwidth"), Some(5));
        assert_eq!(back.get_i64("offset"), Some(-3));
        assert_eq!(back.get_bool("live"), Some(true));
    }
}
