//! The declarative form every message struct is written in.
//!
//! A field is declared once with its versions, and the macro derives the
//! encoder, the decoder, `Default` (with the schema's default values) and,
//! in tests, a random-value generator that respects the same versions, so
//! the three can never disagree about which field exists when.
//!
//! ```text
//! wire_struct! {
//!     /// Doc comment.
//!     pub struct Example {
//!         /// Present from v1; -1 when absent.
//!         pub generation_id: i32 [1+] = -1,
//!         /// Null is legal from v7 only.
//!         pub instance_id: Option<String> [5+] nullable [7+],
//!         /// A tagged field (flexible versions only), written when not default.
//!         pub cluster_id: Option<String> [12+] tag 0,
//!     }
//! }
//! ```
//!
//! Versions use the schema notation: `3+`, `0-4`, `5`, or `none`. Tagged
//! fields must be declared in increasing tag order.

/// A [`VersionRange`](crate::protocol::VersionRange) in schema notation.
macro_rules! versions {
    (none) => {
        $crate::protocol::VersionRange::NONE
    };
    ($lo:literal +) => {
        $crate::protocol::VersionRange::new($lo, i16::MAX)
    };
    ($lo:literal - $hi:literal) => {
        $crate::protocol::VersionRange::new($lo, $hi)
    };
    ($only:literal) => {
        $crate::protocol::VersionRange::new($only, $only)
    };
}

/// The versions at which a field may be null: the declared `nullable`
/// range, or every version of the field when none is declared.
macro_rules! nullable_versions {
    ([$($ver:tt)+]) => {
        versions!($($ver)+)
    };
    ([$($ver:tt)+] [$($nver:tt)+]) => {
        versions!($($nver)+)
    };
}

/// The field's default: the declared value or the type's `Default`.
macro_rules! field_default {
    ($ty:ty;) => {
        <$ty as Default>::default()
    };
    ($ty:ty; $default:expr) => {
        $default
    };
}

/// Expands `$body` only for fields without a tag.
macro_rules! if_untagged {
    ([] $body:block) => {
        $body
    };
    ([$tag:literal] $body:block) => {};
}

/// Expands `$body` only for tagged fields, guarded by `$cond`.
macro_rules! if_tagged {
    ([] $cond:expr, $body:block) => {};
    ([$tag:literal] $cond:expr, $body:block) => {
        if $cond $body
    };
}

/// Expands `$body` only for a tagged field whose tag equals `$tag_var`,
/// guarded by `$cond`.
macro_rules! if_tag_is {
    ([] $tag_var:ident, $cond:expr, $body:block) => {};
    ([$tag:literal] $tag_var:ident, $cond:expr, $body:block) => {
        if $tag_var == $tag && $cond $body
    };
}

/// The tag number of a tagged field.
macro_rules! tag_of {
    ($tag:literal) => {
        $tag
    };
}

/// Declares a wire struct; see the module documentation.
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident : $ty:ty [$($ver:tt)+]
                    $(nullable [$($nver:tt)+])?
                    $(tag $tag:literal)?
                    $(= $default:expr)?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $($field: field_default!($ty; $($default)?),)*
                }
            }
        }

        impl $crate::protocol::wire::Wire for $name {
            #[allow(unused_variables, unused_mut)]
            fn write(
                &self,
                w: &mut $crate::protocol::wire::Writer<'_>,
                cx: $crate::protocol::wire::Cx,
            ) -> Result<(), $crate::protocol::EncodeError> {
                let v = cx.version;
                $(
                    if_untagged!([$($tag)?] {
                        if versions!($($ver)+).contains(v) {
                            let fcx = cx.field(nullable_versions!([$($ver)+] $([$($nver)+])?).contains(v));
                            $crate::protocol::wire::Wire::write(&self.$field, w, fcx).map_err(|e| {
                                e.in_field(concat!(stringify!($name), ".", stringify!($field)))
                            })?;
                        }
                    });
                )*
                if cx.flexible {
                    let mut count: u32 = 0;
                    $(
                        if_tagged!([$($tag)?]
                            versions!($($ver)+).contains(v)
                                && self.$field != field_default!($ty; $($default)?),
                            { count += 1; });
                    )*
                    w.uvarint(count);
                    $(
                        if_tagged!([$($tag)?]
                            versions!($($ver)+).contains(v)
                                && self.$field != field_default!($ty; $($default)?),
                            {
                                let fcx = cx.field(nullable_versions!([$($ver)+] $([$($nver)+])?).contains(v));
                                let mut value = bytes::BytesMut::new();
                                $crate::protocol::wire::Wire::write(
                                    &self.$field,
                                    &mut $crate::protocol::wire::Writer::new(&mut value),
                                    fcx,
                                )
                                .map_err(|e| e.in_field(concat!(stringify!($name), ".", stringify!($field))))?;
                                w.uvarint(tag_of!($($tag)?));
                                w.uvarint(value.len() as u32);
                                w.raw(&value);
                            });
                    )*
                }
                Ok(())
            }

            #[allow(unused_variables, unused_mut)]
            fn read(
                r: &mut $crate::protocol::wire::Reader,
                cx: $crate::protocol::wire::Cx,
            ) -> Result<Self, $crate::protocol::DecodeError> {
                let v = cx.version;
                let mut out = Self::default();
                $(
                    if_untagged!([$($tag)?] {
                        if versions!($($ver)+).contains(v) {
                            let fcx = cx.field(nullable_versions!([$($ver)+] $([$($nver)+])?).contains(v));
                            out.$field = $crate::protocol::wire::Wire::read(r, fcx).map_err(|e| {
                                e.in_field(concat!(stringify!($name), ".", stringify!($field)))
                            })?;
                        }
                    });
                )*
                if cx.flexible {
                    let count = r.uvarint()?;
                    // Each tag takes at least two bytes, so this loop is bounded by the input.
                    for _ in 0..count {
                        let tag = r.uvarint()?;
                        let size = r.uvarint()? as usize;
                        let mut value = r.sub(size)?;
                        $(
                            if_tag_is!([$($tag)?] tag, versions!($($ver)+).contains(v), {
                                let fcx = cx.field(nullable_versions!([$($ver)+] $([$($nver)+])?).contains(v));
                                let field = concat!(stringify!($name), ".", stringify!($field));
                                out.$field = $crate::protocol::wire::Wire::read(&mut value, fcx)
                                    .map_err(|e| e.in_field(field))?;
                                if value.remaining() != 0 {
                                    return Err(value
                                        .error($crate::protocol::DecodeErrorKind::TaggedFieldSize {
                                            tag,
                                            declared: size,
                                            used: size - value.remaining(),
                                        })
                                        .in_field(field));
                                }
                            });
                        )*
                        // Unknown tags (and tags for other versions) are skipped.
                    }
                }
                Ok(out)
            }
        }

        #[cfg(test)]
        impl $crate::protocol::wire::sample::Sample for $name {
            #[allow(unused_variables, unused_mut)]
            fn sample(
                rng: &mut proptest::test_runner::TestRng,
                cx: $crate::protocol::wire::Cx,
            ) -> Self {
                let v = cx.version;
                let mut out = Self::default();
                $(
                    // A quarter of fields keep their default, so "default means
                    // absent" paths (tagged fields above all) are exercised.
                    if versions!($($ver)+).contains(v) {
                        use $crate::protocol::wire::sample::Sample;
                        let fcx = cx.field(nullable_versions!([$($ver)+] $([$($nver)+])?).contains(v));
                        if !out.$field.legal(fcx) || !proptest::prelude::Rng::random_bool(rng, 0.25) {
                            out.$field = Sample::sample(rng, fcx);
                        }
                    }
                )*
                out
            }
        }
    };
}

/// Declares that a wire struct is a top-level message with its name,
/// supported versions and flexible versions.
macro_rules! message {
    ($name:ident, versions [$($ver:tt)+], flexible [$($flex:tt)+]) => {
        impl $crate::protocol::Message for $name {
            const NAME: &'static str = stringify!($name);
            const VERSIONS: $crate::protocol::VersionRange = versions!($($ver)+);
            const FLEXIBLE: $crate::protocol::VersionRange = versions!($($flex)+);
        }
    };
}
