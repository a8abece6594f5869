//! A minimal record batch (magic v2) encoder for pre-encoded load, and a header walker.
//!
//! Only `compression = none` is produced. Batches are encoded once at start-up and sent many
//! times; the broker assigns offsets (the base offset field is outside the CRC).

use bytes::{BufMut, Bytes, BytesMut};

/// Size of the fixed record batch header (magic v2), up to and including the record count.
pub const BATCH_HEADER_LEN: usize = 61;
/// Offset of the attributes field: the CRC32C covers everything from here to the end.
const CRC_START: usize = 21;

/// What a pre-encoded batch holds.
#[derive(Debug, Clone, Copy)]
pub struct BatchSpec {
    /// Records in the batch.
    pub records: usize,
    /// Bytes of each record's value.
    pub value_bytes: usize,
    /// Bytes of each record's key; 0 means unkeyed (null key).
    pub key_bytes: usize,
    /// Base (and max) timestamp, milliseconds since the epoch.
    pub timestamp_ms: i64,
}

fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8 & 0x7f) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

fn varint_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

fn fill_key(key: &mut [u8], i: usize) {
    key.fill(b'0');
    let digits = i.to_string();
    let d = digits.as_bytes();
    let n = d.len().min(key.len());
    let len = key.len();
    key[len - n..].copy_from_slice(&d[d.len() - n..]);
}

/// Encodes one record batch (magic v2, no compression, no headers) at `base_offset`.
pub fn encode_batch(spec: &BatchSpec, base_offset: i64) -> Bytes {
    let records = spec.records.max(1);
    let mut buf = BytesMut::with_capacity(
        BATCH_HEADER_LEN + records * (spec.value_bytes + spec.key_bytes + 16),
    );
    buf.put_i64(base_offset);
    buf.put_i32(0); // batch length, patched below
    buf.put_i32(-1); // partition leader epoch
    buf.put_i8(2); // magic
    buf.put_u32(0); // crc, patched below
    buf.put_i16(0); // attributes: no compression, create time, not transactional
    buf.put_i32(records as i32 - 1); // last offset delta
    buf.put_i64(spec.timestamp_ms);
    buf.put_i64(spec.timestamp_ms);
    buf.put_i64(-1); // producer id
    buf.put_i16(-1); // producer epoch
    buf.put_i32(-1); // base sequence
    buf.put_i32(records as i32);
    let mut key = vec![0u8; spec.key_bytes];
    let value: Vec<u8> = (0..spec.value_bytes).map(|i| (i % 251) as u8).collect();
    for i in 0..records {
        let key_field = if spec.key_bytes == 0 {
            varint_len(-1)
        } else {
            varint_len(spec.key_bytes as i64) + spec.key_bytes
        };
        let body = 1 // attributes
            + varint_len(0) // timestamp delta
            + varint_len(i as i64) // offset delta
            + key_field
            + varint_len(spec.value_bytes as i64)
            + spec.value_bytes
            + varint_len(0); // header count
        put_varint(&mut buf, body as i64);
        buf.put_i8(0);
        put_varint(&mut buf, 0);
        put_varint(&mut buf, i as i64);
        if spec.key_bytes == 0 {
            put_varint(&mut buf, -1);
        } else {
            fill_key(&mut key, i);
            put_varint(&mut buf, spec.key_bytes as i64);
            buf.put_slice(&key);
        }
        put_varint(&mut buf, spec.value_bytes as i64);
        buf.put_slice(&value);
        put_varint(&mut buf, 0);
    }
    let batch_len = (buf.len() - 12) as i32;
    buf[8..12].copy_from_slice(&batch_len.to_be_bytes());
    let crc = crc32c::crc32c(&buf[CRC_START..]);
    buf[17..21].copy_from_slice(&crc.to_be_bytes());
    buf.freeze()
}

/// The header fields of one batch, as walked by [`BatchIter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of the batch's last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Records in the batch (as the header says).
    pub record_count: i32,
    /// Bytes of the whole batch, including the offset and length fields.
    pub total_len: usize,
}

impl BatchHeader {
    /// The offset after the batch's last record.
    pub fn next_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta) + 1
    }
}

/// Walks the complete batches of a records blob; stops at a truncated or malformed one (a fetch
/// response may end in a partial batch).
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BatchIter<'a> {
    /// Walks `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Byte position of the next batch (after the last complete one returned).
    pub fn position(&self) -> usize {
        self.pos
    }
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

fn be_i32(b: &[u8]) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    i32::from_be_bytes(a)
}

impl Iterator for BatchIter<'_> {
    type Item = BatchHeader;

    fn next(&mut self) -> Option<BatchHeader> {
        let rest = &self.buf[self.pos..];
        if rest.len() < BATCH_HEADER_LEN {
            return None;
        }
        let len = be_i32(&rest[8..]);
        if len < (BATCH_HEADER_LEN - 12) as i32 {
            return None;
        }
        let total_len = len as usize + 12;
        if rest.len() < total_len {
            return None;
        }
        let h = BatchHeader {
            base_offset: be_i64(rest),
            last_offset_delta: be_i32(&rest[23..]),
            record_count: be_i32(&rest[57..]),
            total_len,
        };
        self.pos += total_len;
        Some(h)
    }
}

/// Rewrites the base offset of the batch at the start of `batch` (not covered by the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..8].copy_from_slice(&base_offset.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    fn check(spec: BatchSpec) {
        let batch = encode_batch(&spec, 42);
        let headers: Vec<_> = BatchIter::new(&batch).collect();
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].base_offset, 42);
        assert_eq!(headers[0].record_count as usize, spec.records);
        assert_eq!(headers[0].total_len, batch.len());
        assert_eq!(headers[0].next_offset(), 42 + spec.records as i64);

        // CRC32C over attributes..end, as the broker checks it.
        let crc = u32::from_be_bytes([batch[17], batch[18], batch[19], batch[20]]);
        assert_eq!(crc, crc32c::crc32c(&batch[21..]));

        let mut buf = batch.clone();
        let set = RecordBatchDecoder::decode(&mut buf).expect("decodes");
        assert_eq!(set.version, 2);
        assert_eq!(set.compression, Compression::None);
        assert_eq!(set.records.len(), spec.records);
        for (i, r) in set.records.iter().enumerate() {
            assert_eq!(r.offset, 42 + i as i64);
            assert_eq!(r.timestamp, spec.timestamp_ms);
            let v = r.value.as_ref().expect("value");
            assert_eq!(v.len(), spec.value_bytes);
            assert!(v.iter().enumerate().all(|(j, b)| *b == (j % 251) as u8));
            match spec.key_bytes {
                0 => assert!(r.key.is_none()),
                n => {
                    let k = r.key.as_ref().expect("key");
                    assert_eq!(k.len(), n);
                }
            }
            assert!(r.headers.is_empty());
        }
    }

    #[test]
    fn batches_decode_back_with_kafka_protocol() {
        check(BatchSpec {
            records: 1,
            value_bytes: 0,
            key_bytes: 0,
            timestamp_ms: 1,
        });
        check(BatchSpec {
            records: 10,
            value_bytes: 100,
            key_bytes: 0,
            timestamp_ms: 1_700_000_000_000,
        });
        check(BatchSpec {
            records: 200,
            value_bytes: 1024,
            key_bytes: 16,
            timestamp_ms: 5,
        });
        check(BatchSpec {
            records: 3,
            value_bytes: 70_000,
            key_bytes: 3,
            timestamp_ms: 5,
        });
    }

    #[test]
    fn keys_differ_per_record() {
        let spec = BatchSpec {
            records: 12,
            value_bytes: 1,
            key_bytes: 4,
            timestamp_ms: 0,
        };
        let mut buf = encode_batch(&spec, 0);
        let set = RecordBatchDecoder::decode(&mut buf).expect("decodes");
        let keys: Vec<_> = set
            .records
            .iter()
            .map(|r| r.key.clone().expect("key"))
            .collect();
        assert_eq!(&keys[0][..], b"0000");
        assert_eq!(&keys[11][..], b"0011");
    }

    #[test]
    fn iter_stops_at_partial_batch_and_offsets_patch() {
        let spec = BatchSpec {
            records: 5,
            value_bytes: 10,
            key_bytes: 0,
            timestamp_ms: 0,
        };
        let one = encode_batch(&spec, 0);
        let mut two = BytesMut::new();
        two.extend_from_slice(&one);
        let mut second = one.to_vec();
        set_base_offset(&mut second, 5);
        two.extend_from_slice(&second);
        two.extend_from_slice(&one[..30]);
        let hs: Vec<_> = BatchIter::new(&two).collect();
        assert_eq!(hs.len(), 2);
        assert_eq!(hs[1].base_offset, 5);
        assert_eq!(hs[1].next_offset(), 10);
        let mut b = two.freeze().slice(..2 * one.len());
        let sets = RecordBatchDecoder::decode_all(&mut b).expect("decodes after patch");
        assert_eq!(sets[1].records[0].offset, 5);
    }
}
