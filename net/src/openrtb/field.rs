//! How one JSON field is read and written: the `JsonField` trait for leaf types (strings, integers,
//! floats, arrays, optional values, raw JSON) with exact, path-free error phrases such as
//! `must be a number`, and the JSON writing helpers. Knows nothing of OpenRTB objects.

use std::fmt;
use std::marker::PhantomData;

use compact_str::CompactString;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::fast::{Fast, FastReader};
use super::raw::RawJson;

/// A value that can be one JSON field of an OpenRTB object.
pub(crate) trait JsonField: Sized + Default {
    /// Reads the value; wrong JSON types fail with a phrase like `must be a string`.
    fn deserialize_field<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
    /// Reads the value into `place`, which holds `Self::default()`. Objects fill their fields
    /// where they lie, so a request is built once, in its final place, rather than returned and
    /// moved up level by level (a `BidRequest` is ~2 KB, an `Imp` ~0.7 KB); leaves are returned
    /// by value.
    fn deserialize_in_place<'de, D: Deserializer<'de>>(
        d: D,
        place: &mut Self,
    ) -> Result<(), D::Error> {
        *place = Self::deserialize_field(d)?;
        Ok(())
    }
    /// Whether [`JsonField::deserialize_in_place`] is worth a default value written first
    /// (objects), rather than the value returned (leaves).
    const IN_PLACE: bool = false;
    /// The fast path: reads the value with the hand-written reader into `place`, which holds
    /// `Self::default()`. `Reject` on anything unusual; the serde path then decides.
    fn read_fast(r: &mut FastReader<'_>, place: &mut Self) -> Fast;
    /// Returns the value to its default, keeping the buffers it allocated where that is cheap (a
    /// `Vec` keeps its capacity), so a request reused from a pool parses without allocating.
    fn reset(&mut self) {
        *self = Self::default();
    }
    /// Appends the value as JSON.
    fn write_json(&self, out: &mut Vec<u8>);
    /// True when the value is the type's default (absent `Option`, empty `Vec`, `0`), which the
    /// writer omits unless the field was present in the parsed input.
    fn is_default_value(&self) -> bool;
}

/// `DeserializeSeed` that reads a `JsonField`.
pub(crate) struct FieldSeed<T>(PhantomData<T>);

impl<T> FieldSeed<T> {
    pub(crate) fn new() -> Self {
        FieldSeed(PhantomData)
    }
}

impl<'de, T: JsonField> DeserializeSeed<'de> for FieldSeed<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::deserialize_field(d)
    }
}

/// `DeserializeSeed` that reads a `JsonField` into a place holding its default.
pub(crate) struct InPlaceSeed<'a, T>(pub(crate) &'a mut T);

impl<'de, T: JsonField> DeserializeSeed<'de> for InPlaceSeed<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        T::deserialize_in_place(d, self.0)
    }
}

/// Implements every `visit_*` a visitor does not accept as an error carrying `$msg`.
macro_rules! reject_json_types {
    ($msg:expr; $($method:ident),*) => {
        $(reject_json_types!(@one $msg; $method);)*
    };
    (@one $msg:expr; bool) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> { Err(E::custom($msg)) }
    };
    (@one $msg:expr; i64) => {
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> { Err(E::custom($msg)) }
    };
    (@one $msg:expr; u64) => {
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> { Err(E::custom($msg)) }
    };
    (@one $msg:expr; f64) => {
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> { Err(E::custom($msg)) }
    };
    (@one $msg:expr; str) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> { Err(E::custom($msg)) }
    };
    (@one $msg:expr; bytes) => {
        fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> { Err(E::custom($msg)) }
    };
    (@one $msg:expr; unit) => {
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> { Err(E::custom($msg)) }
    };
    (@one $msg:expr; seq) => {
        fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom($msg))
        }
    };
    (@one $msg:expr; map) => {
        fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom($msg))
        }
    };
}
pub(crate) use reject_json_types;

// ---------- strings ----------

/// Reads a JSON string into `$ty` (`String`, or `CompactString`, which keeps up to 24 bytes
/// inline: most request strings, so parsing them allocates nothing).
macro_rules! string_field {
    ($ty:ident, $visitor:ident) => {
        struct $visitor;

        impl<'de> Visitor<'de> for $visitor {
            type Value = $ty;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                Ok(v.into())
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<$ty, E> {
                Ok(v.into())
            }
            reject_json_types!(MUST_BE_STRING; bool, i64, u64, f64, bytes, unit, seq, map);
        }

        impl JsonField for $ty {
            fn deserialize_field<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($visitor)
            }
            fn read_fast(r: &mut FastReader<'_>, place: &mut Self) -> Fast {
                r.string(place)
            }
            fn write_json(&self, out: &mut Vec<u8>) {
                write_json_string(out, self);
            }
            fn is_default_value(&self) -> bool {
                self.is_empty()
            }
        }
    };
}

const MUST_BE_STRING: &str = "must be a string";

string_field!(String, StringVisitor);
string_field!(CompactString, CompactStringVisitor);

// ---------- integers ----------

/// Reads a JSON integer into `$ty`, with one phrase for every wrong type or range.
macro_rules! integer_field {
    ($ty:ident, $visitor:ident, $msg:expr) => {
        struct $visitor;

        impl<'de> Visitor<'de> for $visitor {
            type Value = $ty;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($msg)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                <$ty>::try_from(v).map_err(|_| E::custom($msg))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                <$ty>::try_from(v).map_err(|_| E::custom($msg))
            }
            reject_json_types!($msg; bool, f64, str, bytes, unit, seq, map);
        }

        impl JsonField for $ty {
            fn deserialize_field<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($visitor)
            }
            fn read_fast(r: &mut FastReader<'_>, place: &mut Self) -> Fast {
                *place = r.$ty()?;
                Ok(())
            }
            fn write_json(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
            }
            fn is_default_value(&self) -> bool {
                *self == 0
            }
        }
    };
}

integer_field!(u32, U32Visitor, "must be an integer from 0 to 4294967295");
integer_field!(u64, U64Visitor, "must be a non-negative integer");
integer_field!(
    i32,
    I32Visitor,
    "must be an integer from -2147483648 to 2147483647"
);

// ---------- f64 ----------

struct F64Visitor;

const MUST_BE_NUMBER: &str = "must be a number";

impl<'de> Visitor<'de> for F64Visitor {
    type Value = f64;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    reject_json_types!(MUST_BE_NUMBER; bool, str, bytes, unit, seq, map);
}

impl JsonField for f64 {
    fn deserialize_field<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(F64Visitor)
    }
    fn read_fast(r: &mut FastReader<'_>, place: &mut Self) -> Fast {
        *place = r.f64()?;
        Ok(())
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        write_json_f64(out, *self);
    }
    fn is_default_value(&self) -> bool {
        *self == 0.0
    }
}

/// `deserialize_in_place` of a container (`Option`, `Vec`): filled in place by `visit` when its
/// elements are objects (`in_place`), else read by value (a leaf has nothing to gain).
fn container_in_place<'de, C: JsonField, D: Deserializer<'de>>(
    d: D,
    place: &mut C,
    in_place: bool,
    visit: impl FnOnce(D, &mut C) -> Result<(), D::Error>,
) -> Result<(), D::Error> {
    if in_place {
        visit(d, place)
    } else {
        *place = C::deserialize_field(d)?;
        Ok(())
    }
}

// ---------- Option<T> ----------

struct OptionVisitor<T>(PhantomData<T>);

impl<'de, T: JsonField> Visitor<'de> for OptionVisitor<T> {
    type Value = Option<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
        T::deserialize_field(d).map(Some)
    }
}

/// Reads `Some` into the option's own storage (objects: no move of the value).
struct OptionInPlaceVisitor<'a, T>(&'a mut Option<T>);

impl<'de, T: JsonField> Visitor<'de> for OptionInPlaceVisitor<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        *self.0 = None;
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        *self.0 = None;
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        T::deserialize_in_place(d, self.0.insert(T::default()))
    }
}

impl<T: JsonField> JsonField for Option<T> {
    fn deserialize_field<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_option(OptionVisitor(PhantomData))
    }
    fn deserialize_in_place<'de, D: Deserializer<'de>>(
        d: D,
        place: &mut Self,
    ) -> Result<(), D::Error> {
        container_in_place(d, place, T::IN_PLACE, |d, place| {
            d.deserialize_option(OptionInPlaceVisitor(place))
        })
    }
    const IN_PLACE: bool = T::IN_PLACE;
    fn read_fast(r: &mut FastReader<'_>, place: &mut Self) -> Fast {
        if r.null()? {
            return Ok(()); // `place` holds `None`
        }
        T::read_fast(r, place.insert(T::default()))
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(value) => value.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }
    fn is_default_value(&self) -> bool {
        self.is_none()
    }
}

// ---------- Box<T> ----------

/// An object that is rarely present and large (`video`, `app`, ...) is boxed in its parent, so a
/// request without it neither initialises nor drops its hundreds of bytes.
impl<T: JsonField> JsonField for Box<T> {
    fn deserialize_field<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize_field(d).map(Box::new)
    }
    fn deserialize_in_place<'de, D: Deserializer<'de>>(
        d: D,
        place: &mut Self,
    ) -> Result<(), D::Error> {
        T::deserialize_in_place(d, place)
    }
    const IN_PLACE: bool = T::IN_PLACE;
    fn reset(&mut self) {
        T::reset(self);
    }
    fn read_fast(r: &mut FastReader<'_>, place: &mut Self) -> Fast {
        T::read_fast(r, place)
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        T::write_json(self, out);
    }
    fn is_default_value(&self) -> bool {
        T::is_default_value(self)
    }
}

// ---------- Vec<T> ----------

struct VecVisitor<T>(PhantomData<T>);

const MUST_BE_ARRAY: &str = "must be an array";

impl<'de, T: JsonField> Visitor<'de> for VecVisitor<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        // The body size (bounded by the HTTP layer) bounds the element count.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(item) = seq.next_element_seed(FieldSeed::<T>::new())? {
            items.push(item);
        }
        Ok(items)
    }
    reject_json_types!(MUST_BE_ARRAY; bool, i64, u64, f64, str, bytes, unit, map);
}

/// Reads an array of objects into the vector's own storage: each element is pushed as a default
/// and filled where it lies.
struct VecInPlaceVisitor<'a, T>(&'a mut Vec<T>);

impl<'de, T: JsonField> Visitor<'de> for VecInPlaceVisitor<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let items = self.0;
        items.clear();
        items.reserve(seq.size_hint().unwrap_or(1).min(16));
        loop {
            items.push(T::default());
            let last = items.last_mut().expect("just pushed");
            if seq.next_element_seed(InPlaceSeed(last))?.is_none() {
                items.pop();
                return Ok(());
            }
        }
    }
    reject_json_types!(MUST_BE_ARRAY; bool, i64, u64, f64, str, bytes, unit, map);
}

impl<T: JsonField> JsonField for Vec<T> {
    fn deserialize_field<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(VecVisitor(PhantomData))
    }
    fn deserialize_in_place<'de, D: Deserializer<'de>>(
        d: D,
        place: &mut Self,
    ) -> Result<(), D::Error> {
        container_in_place(d, place, T::IN_PLACE, |d, place| {
            d.deserialize_any(VecInPlaceVisitor(place))
        })
    }
    const IN_PLACE: bool = T::IN_PLACE;
    fn reset(&mut self) {
        self.clear();
    }
    fn read_fast(r: &mut FastReader<'_>, place: &mut Self) -> Fast {
        let mut more = r.array_start()?;
        while more {
            place.push(T::default());
            T::read_fast(r, place.last_mut().expect("just pushed"))?;
            more = r.array_next()?;
        }
        Ok(())
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (index, item) in self.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            item.write_json(out);
        }
        out.push(b']');
    }
    fn is_default_value(&self) -> bool {
        self.is_empty()
    }
}

// ---------- RawJson ----------

impl JsonField for RawJson {
    fn deserialize_field<'de, D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn read_fast(r: &mut FastReader<'_>, place: &mut Self) -> Fast {
        *place = r.raw()?;
        Ok(())
    }
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_str().as_bytes());
    }
    fn is_default_value(&self) -> bool {
        false
    }
}

// ---------- object keys ----------

/// A key of a JSON object: borrowed from the input when it has no escapes.
pub(crate) enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(key) => key,
            Key::Owned(key) => key,
        }
    }
}

pub(crate) struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key::Owned(v))
    }
}

// ---------- writing ----------

/// Escape class of each byte: 0 = copy, b'u' = `\u00XX`, other = `\` followed by that byte.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Appends `text` as a JSON string literal.
pub(crate) fn write_json_string(out: &mut Vec<u8>, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape = ESCAPE[byte as usize];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..index]);
        if escape == b'u' {
            let hex = [HEX[(byte >> 4) as usize], HEX[(byte & 0xf) as usize]];
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex[0], hex[1]]);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Largest integer an f64 holds exactly (2^53); integral values below it are written without `.0`.
const F64_EXACT_INTEGER_MAX: f64 = 9_007_199_254_740_992.0;

/// Appends a number; integral values as integers, non-finite values (never produced by parsing)
/// as `null`.
pub(crate) fn write_json_f64(out: &mut Vec<u8>, value: f64) {
    if !value.is_finite() {
        debug_assert!(false, "non-finite number written as null");
        out.extend_from_slice(b"null");
    } else if value.fract() == 0.0 && value.abs() < F64_EXACT_INTEGER_MAX {
        out.extend_from_slice(itoa::Buffer::new().format(value as i64).as_bytes());
    } else {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    }
}

/// Appends `"key":`, preceded by a comma unless it is the object's first member.
pub(crate) fn write_json_key(out: &mut Vec<u8>, first: &mut bool, key: &str) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    write_json_string(out, key);
    out.push(b':');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_json() {
        let mut out = Vec::new();
        write_json_string(&mut out, "a\"b\\c\n\u{1}é");
        assert_eq!(std::str::from_utf8(&out).unwrap(), r#""a\"b\\c\n\u0001é""#);
    }

    #[test]
    fn numbers_are_written_compactly() {
        let mut out = Vec::new();
        for value in [2.0, 0.5, -3.0, 1e300, 0.1] {
            write_json_f64(&mut out, value);
            out.push(b' ');
        }
        assert_eq!(std::str::from_utf8(&out).unwrap(), "2 0.5 -3 1e300 0.1 ");
    }
}
