//! `RawJson`: a JSON value kept as its exact text, for `ext` objects, unknown fields and nested
//! objects this module does not interpret. Knows nothing of OpenRTB semantics.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::depth::check_nesting;
use super::field::{KeySeed, write_json_f64, write_json_key, write_json_string};

/// The private name sonic-rs gives its lazy-value newtype: a `deserialize_newtype_struct` call with
/// this name makes sonic-rs hand over the raw text of the next value without building it.
/// If a future sonic-rs renames it, `RawJson` falls back to building a `sonic_rs::Value` and
/// writing it back (slower, still lossless up to number formatting); `raw_text_is_kept_verbatim`
/// in the tests notices.
const SONIC_LAZY_VALUE_TOKEN: &str = "$sonic_rs::LazyValue";

/// One JSON value (object, array, string, number, bool or null) held as its exact source text.
/// Written back byte for byte, so `ext` and unknown fields round-trip losslessly.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RawJson(Box<str>);

/// Why a text is not accepted as `RawJson`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RawJsonError(String);

impl RawJson {
    /// Checks that `text` is exactly one JSON value (nesting at most `NESTING_DEPTH_MAX`).
    pub fn parse(text: &str) -> Result<RawJson, RawJsonError> {
        check_nesting(text.as_bytes()).map_err(RawJsonError)?;
        let value: sonic_rs::LazyValue<'_> =
            sonic_rs::from_str(text).map_err(|e| RawJsonError(first_line(&e.to_string())))?;
        Ok(RawJson(value.as_raw_str().into()))
    }

    /// Wraps text the fast reader has already validated as one JSON value.
    pub(crate) fn from_checked(text: &str) -> RawJson {
        RawJson(text.into())
    }

    /// The exact JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The member `key` of this value when it is an object (lazily located, not parsed).
    pub fn get(&self, key: &str) -> Option<sonic_rs::LazyValue<'_>> {
        sonic_rs::get_from_str(&self.0, [key]).ok()
    }

    /// The value parsed into a `sonic_rs::Value` (allocates; for tools and tests, not hot paths).
    pub fn to_value(&self) -> sonic_rs::Value {
        sonic_rs::from_str(&self.0).unwrap_or_default()
    }
}

impl Default for RawJson {
    fn default() -> Self {
        RawJson("null".into())
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawJson({})", self.0)
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_owned()
}

impl<'de> serde::Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(SONIC_LAZY_VALUE_TOKEN, RawJsonVisitor)
    }
}

struct RawJsonVisitor;

impl<'de> Visitor<'de> for RawJsonVisitor {
    type Value = RawJson;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    /// sonic-rs passes the raw text of the value (escaped or not) here.
    fn visit_str<E: de::Error>(self, raw: &str) -> Result<RawJson, E> {
        Ok(RawJson(raw.into()))
    }

    /// Any other deserializer (serde_json, ...): transcode the value into JSON text.
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<RawJson, D::Error> {
        let mut out = Vec::new();
        Transcode(&mut out).deserialize(d)?;
        let text = String::from_utf8(out).map_err(de::Error::custom)?;
        Ok(RawJson(text.into()))
    }
}

/// Writes whatever value a deserializer yields as compact JSON (the non-sonic `RawJson` path;
/// recursion is bounded by that deserializer's own depth limit).
struct Transcode<'a>(&'a mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Transcode<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Transcode<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        write_json_f64(self.0, v);
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        write_json_string(self.0, v);
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.extend_from_slice(b"null");
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.push(b'[');
        let mut first = true;
        loop {
            let mark = self.0.len();
            if !first {
                self.0.push(b',');
            }
            if seq.next_element_seed(Transcode(self.0))?.is_none() {
                self.0.truncate(mark);
                break;
            }
            first = false;
        }
        self.0.push(b']');
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.push(b'{');
        let mut first = true;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            write_json_key(self.0, &mut first, key.as_str());
            map.next_value_seed(Transcode(self.0))?;
        }
        self.0.push(b'}');
        Ok(())
    }
}
