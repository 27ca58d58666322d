//! The Python s4db's file format (0.8 and 0.10), read only, for migration:
//! its `index.idx` (versions 1 and 2), its data file names and header, and
//! its records. Big-endian integers, CRC-32 (IEEE, as `zlib.crc32`), values
//! as raw Snappy blocks. Pure: bytes in, values out. FORMAT.md §11 describes
//! these bytes.

use crate::error::{Error, Result};

/// The Python s4db's index object and local snapshot name.
pub(crate) const PY_INDEX_NAME: &str = "index.idx";
/// Magic of a Python s4db data file.
pub(crate) const PY_MAGIC: &[u8; 4] = b"S4DB";
/// Bytes of a Python s4db data file header: magic, version, file number.
pub(crate) const PY_HEADER_LEN: u64 = 9;
/// Bytes of a record besides key and value: flags, two lengths, CRC.
pub(crate) const PY_RECORD_OVERHEAD: u64 = 13;

const FLAG_TOMBSTONE: u8 = 0x01;
const FLAG_NOCOMPRESS: u8 = 0x02;
const FLAG_BINARY: u8 = 0x04;
const KNOWN_FLAGS: u8 = FLAG_TOMBSTONE | FLAG_NOCOMPRESS | FLAG_BINARY;

/// One live key of a Python s4db index: where its record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PyEntry {
    pub key: Vec<u8>,
    /// The data file's name (relative to the prefix).
    pub file: String,
    /// The record's first byte in the file.
    pub offset: u64,
    /// The whole record's length.
    pub len: u64,
}

/// A record, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PyRecord {
    pub key: Vec<u8>,
    /// `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Bytes the record takes.
    pub len: u64,
}

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordProblem {
    /// The bytes end inside the record (a torn tail when at a file's end).
    Truncated,
    /// Anything else: checksum, flags, lengths, compression.
    Bad(String),
}

/// The data file name of a 64-bit Python s4db file id: `data_%06d.s4db`
/// for writer 0 (0.8, and 0.10's legacy files), `data_%08x_%06d.s4db`
/// otherwise.
pub(crate) fn data_file_name(file_id: u64) -> String {
    let (writer, seq) = (file_id >> 32, file_id & 0xffff_ffff);
    if writer == 0 {
        format!("data_{seq:06}.s4db")
    } else {
        format!("data_{writer:08x}_{seq:06}.s4db")
    }
}

/// Whether `name` is a Python s4db data file name
/// (`^data_(?:[0-9a-f]{8}_)?(\d{6,})\.s4db$`).
pub(crate) fn is_data_file_name(name: &str) -> bool {
    let Some(mid) = name
        .strip_prefix("data_")
        .and_then(|n| n.strip_suffix(".s4db"))
    else {
        return false;
    };
    let digits = match mid.split_once('_') {
        Some((w, seq)) => {
            let hex = w.len() == 8 && w.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !hex {
                return false;
            }
            seq
        }
        None => mid,
    };
    digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A cursor over big-endian fields that fails with a corruption error.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(Error::corruption(
                PY_INDEX_NAME,
                self.pos as u64,
                "the Python s4db index ends inside an entry",
            ));
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(
            self.take(2)?.try_into().unwrap_or_default(),
        ))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().unwrap_or_default(),
        ))
    }
}

/// Parses a Python s4db `index.idx`: version 1 (0.8) or 2 (0.10, with its
/// trailing CRC-32 checked). Entries come in the file's order.
///
/// # Errors
/// [`Error::Corruption`] for an unknown version, a bad checksum, a
/// truncated entry, trailing bytes, an offset inside the file header or a
/// record length below the smallest record.
pub(crate) fn parse_index(buf: &[u8]) -> Result<Vec<PyEntry>> {
    let bad = |offset: usize, why: &str| Error::corruption(PY_INDEX_NAME, offset as u64, why);
    let version = *buf
        .first()
        .ok_or_else(|| bad(0, "the Python s4db index is empty"))?;
    let body = match version {
        1 => buf,
        2 => {
            if buf.len() < 13 {
                return Err(bad(0, "the Python s4db index is too short"));
            }
            let (body, crc) = buf.split_at(buf.len() - 4);
            let stored = u32::from_be_bytes(crc.try_into().unwrap_or_default());
            if crc32fast::hash(body) != stored {
                return Err(bad(body.len(), "the Python s4db index fails its CRC-32"));
            }
            body
        }
        v => {
            return Err(bad(
                0,
                &format!("version {v} is not a Python s4db index (1 or 2)"),
            ));
        }
    };
    let mut r = Reader { buf: body, pos: 1 };
    let _next_file_num = r.u32()?;
    let count = r.u32()?;
    let smallest = if version == 1 { 18 } else { 22 };
    if (count as usize).saturating_mul(smallest) > body.len() {
        return Err(bad(
            5,
            "the Python s4db index counts more entries than it holds",
        ));
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let at = r.pos;
        let key_len = r.u16()? as usize;
        let key = r.take(key_len)?.to_vec();
        let file_id = if version == 1 {
            u64::from(r.u32()?)
        } else {
            r.u64()?
        };
        let offset = r.u64()?;
        let len = u64::from(r.u32()?);
        if offset < PY_HEADER_LEN || len < PY_RECORD_OVERHEAD + key_len as u64 {
            return Err(bad(
                at,
                "a Python s4db index entry points outside any record",
            ));
        }
        out.push(PyEntry {
            key,
            file: data_file_name(file_id),
            offset,
            len,
        });
    }
    if r.pos != body.len() {
        return Err(bad(
            r.pos,
            "the Python s4db index has bytes after its entries",
        ));
    }
    Ok(out)
}

/// Checks a Python s4db data file header (magic `S4DB`; the version byte
/// is not checked, as the Python s4db does not).
pub(crate) fn check_header(buf: &[u8]) -> bool {
    buf.len() as u64 >= PY_HEADER_LEN && buf.starts_with(PY_MAGIC)
}

/// Reads the record at the start of `buf`: lengths, CRC-32 over every byte
/// before it, flags, then the value (Snappy unless `NOCOMPRESS`).
pub(crate) fn parse_record(buf: &[u8]) -> std::result::Result<PyRecord, RecordProblem> {
    if (buf.len() as u64) < PY_RECORD_OVERHEAD {
        return Err(RecordProblem::Truncated);
    }
    let flags = buf[0];
    let be32 = |at: usize| u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]);
    let (key_len, stored_len) = (u64::from(be32(1)), u64::from(be32(5)));
    let len = PY_RECORD_OVERHEAD + key_len + stored_len;
    if key_len > u64::from(u16::MAX) {
        return Err(RecordProblem::Bad(format!(
            "key length {key_len} is over 65,535"
        )));
    }
    if len > buf.len() as u64 {
        return Err(RecordProblem::Truncated);
    }
    let len_us = len as usize;
    let crc = be32(len_us - 4);
    if crc32fast::hash(&buf[..len_us - 4]) != crc {
        return Err(RecordProblem::Bad("record fails its CRC-32".into()));
    }
    if flags & !KNOWN_FLAGS != 0 {
        return Err(RecordProblem::Bad(format!(
            "unknown record flags {flags:#04x}"
        )));
    }
    let key = buf[9..9 + key_len as usize].to_vec();
    let stored = &buf[9 + key_len as usize..len_us - 4];
    let value = if flags & FLAG_TOMBSTONE != 0 {
        if !stored.is_empty() {
            return Err(RecordProblem::Bad("a tombstone with a value".into()));
        }
        None
    } else if flags & FLAG_NOCOMPRESS != 0 {
        Some(stored.to_vec())
    } else {
        Some(
            crate::format::record::decompress(stored)
                .map_err(|why| RecordProblem::Bad(format!("value: {why}")))?,
        )
    };
    Ok(PyRecord { key, value, len })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of FORMAT.md §11: a 0.10 file holding `put k1="hello"`,
    /// `put k2="a"*40`, `delete k1`.
    fn example_file() -> Vec<u8> {
        let hex = "5334444202000000010200000002000000056b3168656c6c6f79656341\
                   000000000200000006 6b32 2800619a0100 e92e2eb0\
                   010000000200000000 6b31 ea41cd53";
        let hex: String = hex.split_whitespace().collect();
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_format_example_reads_as_two_puts_and_a_delete() {
        let f = example_file();
        assert!(check_header(&f));
        let mut at = PY_HEADER_LEN as usize;
        let mut got = Vec::new();
        while at < f.len() {
            let r = parse_record(&f[at..]).unwrap();
            at += r.len as usize;
            got.push((r.key, r.value));
        }
        assert_eq!(
            got,
            vec![
                (b"k1".to_vec(), Some(b"hello".to_vec())),
                (b"k2".to_vec(), Some(vec![b'a'; 40])),
                (b"k1".to_vec(), None),
            ]
        );
    }

    #[test]
    fn every_flipped_bit_and_every_cut_of_a_record_is_reported() {
        let f = example_file();
        let rec = &f[9..9 + 20];
        assert!(parse_record(rec).is_ok());
        for i in 0..rec.len() * 8 {
            let mut b = rec.to_vec();
            b[i / 8] ^= 1 << (i % 8);
            assert!(parse_record(&b).is_err(), "bit {i}");
        }
        for n in 0..rec.len() {
            assert!(parse_record(&rec[..n]).is_err(), "cut at {n}");
        }
    }

    fn index_v2(entries: &[(&[u8], u64, u64, u32)]) -> Vec<u8> {
        let mut b = vec![2];
        b.extend(1u32.to_be_bytes());
        b.extend((entries.len() as u32).to_be_bytes());
        for (k, id, off, len) in entries {
            b.extend((k.len() as u16).to_be_bytes());
            b.extend(*k);
            b.extend(id.to_be_bytes());
            b.extend(off.to_be_bytes());
            b.extend(len.to_be_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend(crc.to_be_bytes());
        b
    }

    #[test]
    fn index_versions_1_and_2_parse_and_a_damaged_one_is_refused() {
        let v2 = index_v2(&[(b"k", (0xdead_beef << 32) | 3, 9, 20), (b"old", 12, 40, 16)]);
        let e = parse_index(&v2).unwrap();
        assert_eq!(e[0].file, "data_deadbeef_000003.s4db");
        assert_eq!(e[1].file, "data_000012.s4db");
        assert_eq!((e[0].offset, e[0].len), (9, 20));
        for i in 0..v2.len() {
            let mut b = v2.clone();
            b[i] ^= 0x10;
            assert!(parse_index(&b).is_err(), "byte {i}");
        }
        for n in 0..v2.len() {
            assert!(parse_index(&v2[..n]).is_err(), "cut at {n}");
        }
        // Version 1 (0.8): 4-byte file numbers, no CRC.
        let mut v1 = vec![1];
        v1.extend(4u32.to_be_bytes());
        v1.extend(1u32.to_be_bytes());
        v1.extend(1u16.to_be_bytes());
        v1.push(b'k');
        v1.extend(3u32.to_be_bytes());
        v1.extend(9u64.to_be_bytes());
        v1.extend(30u32.to_be_bytes());
        let e = parse_index(&v1).unwrap();
        assert_eq!(
            (e[0].file.as_str(), e[0].offset, e[0].len),
            ("data_000003.s4db", 9, 30)
        );
        assert!(parse_index(&[3, 0, 0]).is_err());
    }

    #[test]
    fn data_file_names_of_both_versions_are_recognised() {
        assert!(is_data_file_name("data_000012.s4db"));
        assert!(is_data_file_name("data_deadbeef_000003.s4db"));
        assert!(is_data_file_name("data_deadbeef_1234567.s4db"));
        assert!(!is_data_file_name("data_DEADBEEF_000003.s4db"));
        assert!(!is_data_file_name("data_00000007_00000000000000ab.s4db"));
        assert!(!is_data_file_name("index.idx"));
        assert!(!is_data_file_name("data_12345.s4db"));
    }
}
