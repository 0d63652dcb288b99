//! [`Sp`]: a value with the byte span it came from in the manifest.

use std::ops::{Deref, Range};

use serde::{Deserialize, Deserializer};

/// A manifest value together with its byte range in the source, for diagnostics.
///
/// It wraps `toml::Spanned` so that the JSON Schema of the manifest describes the value itself
/// (editors need the shape of the data, not of our span bookkeeping).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sp<T>(toml::Spanned<T>);

impl<T> Sp<T> {
    /// A value with an explicit span (tests and synthesized values).
    pub fn new(span: Range<usize>, value: T) -> Self {
        Sp(toml::Spanned::new(span, value))
    }

    /// The byte range of the value in the manifest text.
    pub fn span(&self) -> Range<usize> {
        self.0.span()
    }

    /// The value.
    pub fn get(&self) -> &T {
        self.0.get_ref()
    }

    /// The value, by move.
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

impl<T> Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.get_ref()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        toml::Spanned::<T>::deserialize(d).map(Sp)
    }
}

#[cfg(feature = "schema-gen")]
impl<T: schemars::JsonSchema> schemars::JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}
