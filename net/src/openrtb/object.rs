//! `json_object!`: declares one OpenRTB object as a Rust struct plus its reader and writer.
//! Known members are typed fields; every other member is kept verbatim in `extra`; `present`
//! remembers which known members the input carried, so writing adds and drops nothing.
//! Knows JSON objects, not OpenRTB semantics (those are in `validate`).

/// Which known members of an object appeared in the parsed input, one bit per field in declaration
/// order. The writer emits a member when it holds a non-default value, is required, or its bit is
/// set, so `"bidfloor": 0` and `"deals": []` survive a round trip. Leave it `Default` when building
/// objects in code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Present(u64);

impl Present {
    /// True when field number `index` was present.
    pub fn contains(self, index: u32) -> bool {
        self.0 & (1u64 << index) != 0
    }

    /// Marks field number `index` present.
    pub fn insert(&mut self, index: u32) {
        self.0 |= 1u64 << index;
    }
}

/// The JSON member name of a field: its identifier, or the `as "name"` override.
macro_rules! json_key {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $json:literal) => {
        $json
    };
}
pub(crate) use json_key;

/// Declares `pub struct $name` with the given fields plus `extra` and `present`, and implements
/// `JsonField` (reader and writer) and `serde::Deserialize` for it. Members listed in
/// `required(...)` fail parsing with `.<name> is required` when absent and are always written.
macro_rules! json_object {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $field:ident $(as $json:literal)? : $ty:ty
            ),* $(,)?
        }
        required($($required:ident),* $(,)?);
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $( $(#[$field_meta])* pub $field: $ty, )*
            /// Members not modelled above, in input order, written back verbatim.
            pub extra: Vec<(Box<str>, $crate::openrtb::RawJson)>,
            /// Which modelled members the parsed input carried (see [`Present`](crate::openrtb::Present)).
            pub present: $crate::openrtb::Present,
        }

        impl $name {
            /// True when the parsed input carried the modelled member named `key` (its JSON name),
            /// even with a default value such as `0`, `[]` or `null`.
            pub fn was_present(&self, key: &str) -> bool {
                #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
                enum Ix { $($field),* }
                match key {
                    $(
                        $crate::openrtb::object::json_key!($field $(, $json)?) =>
                            self.present.contains(Ix::$field as u32),
                    )*
                    _ => false,
                }
            }
        }

        impl $crate::openrtb::field::JsonField for $name {
            fn deserialize_field<'de, D: serde::de::Deserializer<'de>>(
                d: D,
            ) -> Result<Self, D::Error> {
                let mut object = $name::default();
                Self::deserialize_in_place(d, &mut object)?;
                Ok(object)
            }

            const IN_PLACE: bool = true;

            fn deserialize_in_place<'de, D: serde::de::Deserializer<'de>>(
                d: D,
                place: &mut Self,
            ) -> Result<(), D::Error> {
                use serde::de::{self, MapAccess, SeqAccess, Visitor};
                use $crate::openrtb::field::{reject_json_types, InPlaceSeed, FieldSeed, KeySeed};

                /// Fills the object it borrows, which holds its default.
                struct ObjectVisitor<'a>(&'a mut $name);

                impl<'de> Visitor<'de> for ObjectVisitor<'_> {
                    type Value = ();

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("an object")
                    }

                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
                        enum Ix { $($field),* }
                        let object = self.0;
                        while let Some(key) = map.next_key_seed(KeySeed)? {
                            match key.as_str() {
                                $(
                                    $crate::openrtb::object::json_key!($field $(, $json)?) => {
                                        if object.present.contains(Ix::$field as u32) {
                                            return Err(de::Error::custom(format_args!(
                                                ".{} appears more than once",
                                                $crate::openrtb::object::json_key!($field $(, $json)?)
                                            )));
                                        }
                                        map.next_value_seed(InPlaceSeed(&mut object.$field))?;
                                        object.present.insert(Ix::$field as u32);
                                    }
                                )*
                                _ => {
                                    let value = map.next_value_seed(
                                        FieldSeed::<$crate::openrtb::RawJson>::new(),
                                    )?;
                                    object.extra.push((key.as_str().into(), value));
                                }
                            }
                        }
                        $(
                            if !object.present.contains(Ix::$required as u32) {
                                return Err(de::Error::custom(concat!(
                                    ".", stringify!($required), " is required"
                                )));
                            }
                        )*
                        Ok(())
                    }

                    reject_json_types!("must be an object"; bool, i64, u64, f64, str, bytes, unit, seq);
                }

                d.deserialize_any(ObjectVisitor(place))
            }

            /// Same members, duplicate and required checks as the visitor above, on the fast
            /// reader; every failure is a bare `Reject` (the serde path writes the message).
            fn read_fast(
                r: &mut $crate::openrtb::fast::FastReader<'_>,
                place: &mut Self,
            ) -> $crate::openrtb::fast::Fast {
                use $crate::openrtb::fast::Reject;
                #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
                enum Ix { $($field),* }
                let object = place;
                let mut more = r.object_start()?;
                while more {
                    let key = r.key()?;
                    match key {
                        $(
                            $crate::openrtb::object::json_key!($field $(, $json)?) => {
                                if object.present.contains(Ix::$field as u32) {
                                    return Err(Reject);
                                }
                                $crate::openrtb::field::JsonField::read_fast(r, &mut object.$field)?;
                                object.present.insert(Ix::$field as u32);
                            }
                        )*
                        _ => {
                            let value = r.raw()?;
                            object.extra.push((key.into(), value));
                        }
                    }
                    more = r.object_next()?;
                }
                $(
                    if !object.present.contains(Ix::$required as u32) {
                        return Err(Reject);
                    }
                )*
                Ok(())
            }

            fn reset(&mut self) {
                $( $crate::openrtb::field::JsonField::reset(&mut self.$field); )*
                self.extra.clear();
                self.present = $crate::openrtb::Present::default();
            }

            fn write_json(&self, out: &mut Vec<u8>) {
                use $crate::openrtb::field::write_json_key;
                #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
                enum Ix { $($field),* }
                const REQUIRED: &[&str] = &[$(stringify!($required)),*];
                const { assert!([$(stringify!($field)),*].len() <= 64, "Present holds 64 fields") };
                out.push(b'{');
                let mut first = true;
                $(
                    if !self.$field.is_default_value()
                        || self.present.contains(Ix::$field as u32)
                        || REQUIRED.contains(&stringify!($field))
                    {
                        write_json_key(out, &mut first, $crate::openrtb::object::json_key!($field $(, $json)?));
                        self.$field.write_json(out);
                    }
                )*
                for (key, value) in &self.extra {
                    write_json_key(out, &mut first, key);
                    out.extend_from_slice(value.as_str().as_bytes());
                }
                out.push(b'}');
            }

            fn is_default_value(&self) -> bool {
                false
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$name as $crate::openrtb::field::JsonField>::deserialize_field(d)
            }
        }
    };
}
pub(crate) use json_object;
