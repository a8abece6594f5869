//! Bounds-checked primitives of the Kafka wire format and a schema-driven walker.
//!
//! Two users:
//! - the KIP-951 scanner ([`super::rewrite`]'s `node_endpoints`), which walks a Produce or Fetch
//!   response to the offset of its top-level tagged-field section without copying anything;
//! - the cold-path rewrites (Metadata, FindCoordinator, DescribeCluster, ApiVersions, ShareFetch,
//!   ShareAcknowledge), which walk a body before handing it to kafka-protocol's decoder. kafka-protocol
//!   calls `Vec::with_capacity(n)` with an array count `n` read from the wire, so a hostile count
//!   would make it allocate gigabytes; after [`walk_body`] has accepted a body every array count it
//!   holds is backed by bytes that are really there, which bounds that allocation by the frame size.
//!
//! Encodings (Kafka protocol guide, "Protocol Primitive Types"): classic strings are `int16` length
//! (`-1` = null), classic bytes and arrays `int32` length (`-1` = null); in flexible versions
//! (KIP-482) strings, bytes and arrays are `unsigned varint` length + 1 (`0` = null) and each struct
//! ends with a tagged-field section: `uvarint count`, then `count` times `uvarint tag, uvarint size,
//! size bytes`.

/// What went wrong while walking bytes. Small and `Copy`: no allocation on the error path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended in the middle of a field.
    #[error("truncated at byte {0}")]
    Truncated(usize),
    /// A length, count or varint had a value the protocol does not allow.
    #[error("invalid length or count at byte {0}")]
    InvalidLength(usize),
    /// A known tagged field did not fill exactly the size its header declared.
    #[error("tagged field {tag} at byte {at} does not match its declared size")]
    TaggedFieldSize {
        /// tag number
        tag: u32,
        /// offset of the field's content
        at: usize,
    },
    /// A field that must not be null was null.
    #[error("unexpected null at byte {0}")]
    UnexpectedNull(usize),
    /// A string was not UTF-8.
    #[error("invalid UTF-8 at byte {0}")]
    InvalidUtf8(usize),
}

/// A read position over a byte slice; every read is bounds-checked.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn at(buf: &'a [u8], pos: usize) -> Self {
        Self { buf, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Takes `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(WireError::InvalidLength(self.pos))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(WireError::Truncated(self.pos))?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn skip(&mut self, n: usize) -> Result<(), WireError> {
        self.take(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// Unsigned varint (protobuf style, at most 5 bytes, fits in u32).
    pub(crate) fn uvarint(&mut self) -> Result<u32, WireError> {
        let start = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.array::<1>()?[0];
            if i == 4 && b > 0x0f {
                return Err(WireError::InvalidLength(start));
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::InvalidLength(start))
    }

    /// A length prefix: compact (`uvarint` N+1, 0 = null) or classic (`int16`/`int32`, -1 = null).
    /// Returns `None` for null.
    fn len(&mut self, flexible: bool, wide: bool) -> Result<Option<usize>, WireError> {
        let at = self.pos;
        if flexible {
            let n = self.uvarint()?;
            Ok(n.checked_sub(1).map(|n| n as usize))
        } else {
            let n = if wide {
                self.i32()?
            } else {
                i32::from(self.i16()?)
            };
            match n {
                -1 => Ok(None),
                n if n >= 0 => Ok(Some(n as usize)),
                _ => Err(WireError::InvalidLength(at)),
            }
        }
    }

    /// A (nullable) string; returns its byte range, `None` for null.
    pub(crate) fn string(&mut self, flexible: bool) -> Result<Option<(usize, usize)>, WireError> {
        match self.len(flexible, false)? {
            None => Ok(None),
            Some(n) => {
                let start = self.pos;
                self.skip(n)?;
                Ok(Some((start, self.pos)))
            }
        }
    }

    /// A non-null UTF-8 string.
    pub(crate) fn str(&mut self, flexible: bool) -> Result<&'a str, WireError> {
        let at = self.pos;
        let (s, e) = self
            .string(flexible)?
            .ok_or(WireError::UnexpectedNull(at))?;
        let bytes = self.buf.get(s..e).ok_or(WireError::Truncated(s))?;
        std::str::from_utf8(bytes).map_err(|_| WireError::InvalidUtf8(s))
    }

    /// A nullable UTF-8 string.
    pub(crate) fn opt_str(&mut self, flexible: bool) -> Result<Option<&'a str>, WireError> {
        match self.string(flexible)? {
            None => Ok(None),
            Some((s, e)) => {
                let bytes = self.buf.get(s..e).ok_or(WireError::Truncated(s))?;
                std::str::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| WireError::InvalidUtf8(s))
            }
        }
    }

    /// The byte range of a (nullable) bytes field (records are one), skipped without reading.
    pub(crate) fn bytes_range(
        &mut self,
        flexible: bool,
    ) -> Result<Option<(usize, usize)>, WireError> {
        match self.len(flexible, true)? {
            None => Ok(None),
            Some(n) => {
                let start = self.pos;
                self.skip(n)?;
                Ok(Some((start, self.pos)))
            }
        }
    }

    /// Skips a (nullable) bytes field (records are one): O(1), nothing is read or copied.
    pub(crate) fn skip_bytes(&mut self, flexible: bool) -> Result<(), WireError> {
        if let Some(n) = self.len(flexible, true)? {
            self.skip(n)?;
        }
        Ok(())
    }

    /// An array count (`None` = null). The count is checked against the bytes left, given the
    /// smallest encoding of one element, so a caller may trust it as a loop bound.
    pub(crate) fn count(
        &mut self,
        flexible: bool,
        min_elem: usize,
    ) -> Result<Option<usize>, WireError> {
        let at = self.pos;
        let n = self.len(flexible, true)?;
        if let Some(n) = n {
            if n.saturating_mul(min_elem.max(1)) > self.remaining() {
                return Err(WireError::Truncated(at));
            }
        }
        Ok(n)
    }

    /// The field count of a tagged-field section: a plain `uvarint` (not length + 1), checked
    /// against the bytes left (each field takes at least 2: tag and size).
    pub(crate) fn tag_count(&mut self) -> Result<usize, WireError> {
        let at = self.pos;
        let n = self.uvarint()? as usize;
        if n.saturating_mul(2) > self.remaining() {
            return Err(WireError::Truncated(at));
        }
        Ok(n)
    }

    /// A tag number. Tags above `i32::MAX` are rejected: Kafka reads them as `int`, and
    /// kafka-protocol stores them as `i32` and would re-encode a wrong field count.
    pub(crate) fn tag(&mut self) -> Result<u32, WireError> {
        let at = self.pos;
        let tag = self.uvarint()?;
        if tag > i32::MAX as u32 {
            return Err(WireError::InvalidLength(at));
        }
        Ok(tag)
    }

    /// Skips a whole tagged-field section.
    pub(crate) fn skip_tagged(&mut self) -> Result<(), WireError> {
        let n = self.tag_count()?;
        for _ in 0..n {
            let _tag = self.tag()?;
            let size = self.uvarint()?;
            self.skip(size as usize)?;
        }
        Ok(())
    }
}

/// Appends an unsigned varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a compact (nullable) string.
pub(crate) fn put_compact_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            put_uvarint(out, (s.len() as u32).saturating_add(1));
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// One field type of a message schema.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// Fixed-width scalar (int8/bool = 1, int16 = 2, int32 = 4, int64 = 8, uuid = 16).
    Fixed(usize),
    /// (nullable) string
    Str,
    /// (nullable) string holding a topic name (reported by [`walk_body_names`])
    Name,
    /// (nullable) bytes; records are such a field
    Bytes,
    /// (nullable) array of fixed-width scalars
    ScalarArray(usize),
    /// (nullable) array of (nullable) strings; elements carry no tagged section
    StrArray,
    /// [`Ty::StrArray`] whose elements are topic names (reported by [`walk_body_names`])
    NameArray,
    /// (nullable) array of structs
    Array(&'static Struct),
    /// an inline struct
    Struct(&'static Struct),
    /// a nullable inline struct: `int8` marker, the struct follows only when it is 1 (kafka-protocol's
    /// `OptionStruct`; any other marker is null)
    OptStruct(&'static Struct),
}

/// A field present in versions `min..=max`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub(crate) ty: Ty,
    pub(crate) min: i16,
    pub(crate) max: i16,
}

/// Field present in all versions from `min` on.
pub(crate) const fn since(min: i16, ty: Ty) -> Field {
    Field {
        ty,
        min,
        max: i16::MAX,
    }
}

/// Field present in all versions.
pub(crate) const fn always(ty: Ty) -> Field {
    since(0, ty)
}

/// A tagged field the schema knows (kafka-protocol decodes it, so its content is walked too).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tagged {
    pub(crate) tag: u32,
    pub(crate) ty: Ty,
}

/// A struct: its fields in wire order and the tagged fields it knows.
#[derive(Debug)]
pub(crate) struct Struct {
    pub(crate) fields: &'static [Field],
    pub(crate) tagged: &'static [Tagged],
}

/// A message body schema.
#[derive(Debug)]
pub(crate) struct Schema {
    pub(crate) root: &'static Struct,
    /// first flexible version (KIP-482); `i16::MAX` when none is
    pub(crate) flexible_from: i16,
}

pub(crate) const I8: Ty = Ty::Fixed(1);
pub(crate) const BOOL: Ty = Ty::Fixed(1);
pub(crate) const I16: Ty = Ty::Fixed(2);
pub(crate) const I32: Ty = Ty::Fixed(4);
pub(crate) const I64: Ty = Ty::Fixed(8);
pub(crate) const UUID: Ty = Ty::Fixed(16);

fn min_size(ty: Ty, flexible: bool) -> usize {
    match ty {
        Ty::Fixed(n) => n,
        Ty::Str
        | Ty::Name
        | Ty::Bytes
        | Ty::ScalarArray(_)
        | Ty::StrArray
        | Ty::NameArray
        | Ty::Array(_)
            if flexible =>
        {
            1
        }
        Ty::Str | Ty::Name => 2,
        Ty::Bytes | Ty::ScalarArray(_) | Ty::StrArray | Ty::NameArray | Ty::Array(_) => 4,
        Ty::Struct(_) | Ty::OptStruct(_) => 1,
    }
}

/// Called with the bytes of every non-null topic name ([`Ty::Name`]) a walk passes.
type OnName<'n> = &'n mut dyn FnMut(&[u8]);

fn walk_ty(
    c: &mut Cursor<'_>,
    ty: Ty,
    v: i16,
    flexible: bool,
    on: OnName<'_>,
) -> Result<(), WireError> {
    match ty {
        Ty::Fixed(n) => c.skip(n),
        Ty::Str => c.string(flexible).map(|_| ()),
        Ty::Name => {
            if let Some((s, e)) = c.string(flexible)? {
                on(c.buf.get(s..e).ok_or(WireError::Truncated(s))?);
            }
            Ok(())
        }
        Ty::Bytes => c.skip_bytes(flexible),
        Ty::ScalarArray(n) => {
            let count = c.count(flexible, n)?.unwrap_or(0);
            c.skip(count.saturating_mul(n))
        }
        Ty::StrArray | Ty::NameArray => {
            let count = c.count(flexible, min_size(Ty::Str, flexible))?.unwrap_or(0);
            for _ in 0..count {
                let range = c.string(flexible)?;
                if let (Ty::NameArray, Some((s, e))) = (ty, range) {
                    on(c.buf.get(s..e).ok_or(WireError::Truncated(s))?);
                }
            }
            Ok(())
        }
        Ty::Array(s) => {
            let min = if flexible { 1 } else { 0 }
                + s.fields
                    .iter()
                    .filter(|f| f.min <= v && v <= f.max)
                    .map(|f| min_size(f.ty, flexible))
                    .sum::<usize>();
            let count = c.count(flexible, min)?.unwrap_or(0);
            for _ in 0..count {
                walk_struct(c, s, v, flexible, on)?;
            }
            Ok(())
        }
        Ty::Struct(s) => walk_struct(c, s, v, flexible, on),
        Ty::OptStruct(s) => {
            if c.array::<1>()?[0] == 1 {
                walk_struct(c, s, v, flexible, on)?;
            }
            Ok(())
        }
    }
}

/// Walks the fields of `s` (not its tagged section).
pub(crate) fn walk_fields(
    c: &mut Cursor<'_>,
    s: &Struct,
    v: i16,
    flexible: bool,
) -> Result<(), WireError> {
    walk_fields_on(c, s, v, flexible, &mut |_| {})
}

fn walk_fields_on(
    c: &mut Cursor<'_>,
    s: &Struct,
    v: i16,
    flexible: bool,
    on: OnName<'_>,
) -> Result<(), WireError> {
    for f in s.fields {
        if f.min <= v && v <= f.max {
            walk_ty(c, f.ty, v, flexible, on)?;
        }
    }
    Ok(())
}

/// Walks a tagged-field section; known tags must fill exactly their declared size.
fn walk_tagged_on(c: &mut Cursor<'_>, s: &Struct, v: i16, on: OnName<'_>) -> Result<(), WireError> {
    let n = c.tag_count()?;
    for _ in 0..n {
        let tag = c.tag()?;
        let size = c.uvarint()? as usize;
        let at = c.pos();
        let content = c.take(size)?;
        if let Some(t) = s.tagged.iter().find(|t| t.tag == tag) {
            let mut inner = Cursor::new(content);
            walk_ty(&mut inner, t.ty, v, true, on)
                .map_err(|_| WireError::TaggedFieldSize { tag, at })?;
            if inner.remaining() != 0 {
                return Err(WireError::TaggedFieldSize { tag, at });
            }
        }
    }
    Ok(())
}

fn walk_struct(
    c: &mut Cursor<'_>,
    s: &Struct,
    v: i16,
    flexible: bool,
    on: OnName<'_>,
) -> Result<(), WireError> {
    walk_fields_on(c, s, v, flexible, on)?;
    if flexible {
        walk_tagged_on(c, s, v, on)?;
    }
    Ok(())
}

/// Walks a whole message body of version `v` from the cursor's position. Returns the offset of the
/// top-level tagged-field section (`None` for non-flexible versions). Trailing bytes are allowed
/// (kafka-protocol ignores them too).
pub(crate) fn walk_body(
    c: &mut Cursor<'_>,
    schema: &Schema,
    v: i16,
) -> Result<Option<usize>, WireError> {
    walk_body_names(c, schema, v, &mut |_| {})
}

/// Decodes a request body (`payload[body..]`, version `version`) as `M` with kafka-protocol,
/// after a walk with `schema` has proven that every array count is backed by bytes:
/// kafka-protocol allocates by count unchecked, so a hostile count must never reach it.
///
/// # Errors
/// The walk's or kafka-protocol's error, as text.
pub(crate) fn decode_walked<M: kafka_protocol::protocol::Decodable>(
    payload: &[u8],
    body: usize,
    version: i16,
    schema: &Schema,
) -> Result<M, String> {
    walk_body(&mut Cursor::at(payload, body), schema, version).map_err(|e| e.to_string())?;
    let mut b = bytes::Bytes::copy_from_slice(payload.get(body..).ok_or("short request")?);
    M::decode(&mut b, version).map_err(|e| e.to_string())
}

/// [`walk_body`], calling `on` with every topic name ([`Ty::Name`] field) it passes, in place.
pub(crate) fn walk_body_names(
    c: &mut Cursor<'_>,
    schema: &Schema,
    v: i16,
    on: OnName<'_>,
) -> Result<Option<usize>, WireError> {
    let flexible = v >= schema.flexible_from;
    walk_fields_on(c, schema.root, v, flexible, on)?;
    if flexible {
        let at = c.pos();
        walk_tagged_on(c, schema.root, v, on)?;
        Ok(Some(at))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trip() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut out = Vec::new();
            put_uvarint(&mut out, v);
            let mut c = Cursor::new(&out);
            assert_eq!(c.uvarint(), Ok(v));
            assert_eq!(c.remaining(), 0);
        }
    }

    #[test]
    fn uvarint_rejects_overlong() {
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert!(c.uvarint().is_err());
        let mut c = Cursor::new(&[0x80]);
        assert_eq!(c.uvarint(), Err(WireError::Truncated(1)));
    }

    #[test]
    fn tags_above_i32_max_are_rejected() {
        // one tagged field, tag 2^31, size 0 (found by fuzzing: kafka-protocol re-encodes it with a
        // wrong count)
        let wire = [1, 0x80, 0x80, 0x80, 0x80, 0x08, 0];
        assert!(Cursor::new(&wire).skip_tagged().is_err());
        let ok = [1, 0xff, 0xff, 0xff, 0xff, 0x07, 0];
        assert!(Cursor::new(&ok).skip_tagged().is_ok());
    }

    #[test]
    fn count_is_bounded_by_remaining_bytes() {
        // int32 count 1_000_000 with 4 bytes left
        let mut c = Cursor::new(&[0, 0x0f, 0x42, 0x40, 0, 0, 0, 0]);
        assert!(c.count(false, 4).is_err());
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(c.count(false, 4), Ok(None));
        let mut c = Cursor::new(&[0xff, 0xff, 0xff, 0xfe]);
        assert!(c.count(false, 4).is_err());
    }
}
