//! # corral-yaml: YAML from outside, read with bounds
//!
//! User-data, services files and meta-data are YAML that anyone who can reach a
//! datasource may write. The parser already caps nesting and alias jumps, but a small
//! document can still expand to a huge one: an anchor of 10,000 items repeated by
//! 10,000 aliases is about 50 KB of text and 10^8 values. [`check`] walks the document
//! as the deserializer expands it, counting every value and building nothing, and stops
//! at [`MAX_NODES`], so a hostile document costs bounded time and memory before any
//! caller turns it into a value or a typed configuration.
//!
//! - **Owns:** the node limit and its error; finding YAML merge keys (`<<`).
//! - **Must not touch:** anything but the text it is given.
//! - **Talks to:** nothing; corral-config (user-data, meta-data) and corral-compose
//!   (services files) call it before they parse.

use serde::de::{DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess};
use std::cell::Cell;
use std::fmt;

/// The most values a document may expand to. A 1 MiB document written out without
/// aliases holds at most about 500,000 (two bytes a value at the least), so this leaves
/// room for honest aliases and none for an expansion attack; walking this many takes
/// well under a second.
pub const MAX_NODES: usize = 1_000_000;

/// Why a document was refused before it was read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum YamlError {
    #[error(
        "expands to more than {max} values (YAML aliases repeat what they name); \
         write the values out, or use fewer aliases"
    )]
    TooManyNodes { max: usize },
    /// The parser's own complaint, found on the way; the caller's parse reports it with
    /// its position.
    #[error("{0}")]
    Syntax(String),
}

/// Counts the values `text` expands to; an error once there are more than `max`.
pub fn check_with(text: &str, max: usize) -> Result<usize, YamlError> {
    let left = Cell::new(max);
    let over = Cell::new(false);
    let counter = Counter {
        left: &left,
        over: &over,
    };
    match counter.deserialize(yaml_serde::Deserializer::from_str(text)) {
        Ok(()) => Ok(max - left.get()),
        Err(_) if over.get() => Err(YamlError::TooManyNodes { max }),
        Err(e) => Err(YamlError::Syntax(e.to_string())),
    }
}

/// [`check_with`] at [`MAX_NODES`].
pub fn check(text: &str) -> Result<usize, YamlError> {
    check_with(text, MAX_NODES)
}

/// [`check`] for a caller that parses the text next: only [`YamlError::TooManyNodes`] is
/// an error here; a syntax error is left for the caller's parse, which reports it with
/// its position.
pub fn bounded(text: &str) -> Result<(), YamlError> {
    match check(text) {
        Err(e @ YamlError::TooManyNodes { .. }) => Err(e),
        _ => Ok(()),
    }
}

/// Whether `value` has a YAML merge key (`<<: *defaults`, YAML 1.1, which go-yaml and so
/// RancherOS and docker-compose honour) anywhere. Such a document is read through
/// [`yaml_serde::Value::apply_merge`] first; serde's typed parse alone does not merge.
pub fn has_merge_keys(value: &yaml_serde::Value) -> bool {
    use yaml_serde::Value;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Mapping(m) => {
                if m.contains_key(Value::String("<<".into())) {
                    return true;
                }
                stack.extend(m.values());
            }
            Value::Sequence(items) => stack.extend(items),
            Value::Tagged(t) => stack.push(&t.value),
            _ => {}
        }
    }
    false
}

/// Visits every value and counts it; builds nothing.
#[derive(Clone, Copy)]
struct Counter<'a> {
    left: &'a Cell<usize>,
    over: &'a Cell<bool>,
}

impl Counter<'_> {
    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => {
                self.over.set(true);
                Err(E::custom("too many values"))
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Counter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<(), E> {
        self.take()
    }
    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.take()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag value`): the tag, then the value.
        self.take()?;
        let (_, variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn merge_keys_are_found_at_any_depth() {
        let v = |t: &str| yaml_serde::from_str::<yaml_serde::Value>(t).expect("yaml");
        assert!(!has_merge_keys(&v("a: {b: [1, {c: 2}]}\n")));
        assert!(has_merge_keys(&v(
            "x: &d {image: busybox}\na:\n  s:\n    - {<<: *d, command: 'true'}\n"
        )));
    }

    #[test]
    fn an_ordinary_document_is_counted() {
        // The mapping, two keys, a string, a list and its three items.
        assert_eq!(check("a: x\nb: [1, 2, 3]\n"), Ok(8));
        assert_eq!(check("").map(|n| n <= 1), Ok(true));
        assert_eq!(
            check("a: &x [1, 2]\nb: *x\n"),
            Ok(9),
            "an alias counts what it repeats"
        );
    }

    #[test]
    fn a_quadratic_alias_document_is_refused_quickly() {
        let items = vec!["x"; 10_000].join(", ");
        let aliases = vec!["*a"; 10_000].join(", ");
        let text = format!("a: &a [{items}]\nb: [{aliases}]\n");
        assert!(text.len() < 100_000, "{} bytes", text.len());
        let started = Instant::now();
        assert_eq!(
            check(&text),
            Err(YamlError::TooManyNodes { max: MAX_NODES })
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "bounded: {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn tags_are_counted_and_syntax_errors_are_passed_on() {
        // The mapping, its key, the tagged value, its tag, the list and its item.
        assert_eq!(check("a: !tag [1]\n"), Ok(6));
        assert!(matches!(check("a: [1\n"), Err(YamlError::Syntax(_))));
        assert_eq!(
            bounded("a: [1\n"),
            Ok(()),
            "syntax is the caller's parse's to report"
        );
        assert_eq!(
            check_with("[1, 2, 3, 4]", 3),
            Err(YamlError::TooManyNodes { max: 3 })
        );
    }
}
