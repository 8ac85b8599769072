//! OpenRTB 2.6 types, parsing and validation.
