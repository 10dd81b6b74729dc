//! Control records: the transaction markers brokers write into the log.

use super::RecordsError;

/// The kind of a control record, from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// The producer's transaction was aborted: its earlier records are to be
    /// dropped by `read_committed` consumers.
    Abort,
    /// The producer's transaction was committed.
    Commit,
    /// Any other type (KRaft uses control records for its own metadata log).
    Other(i16),
}

impl ControlRecordType {
    /// The type id stored in the key.
    pub fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(id) => id,
        }
    }

    /// The type with the given id.
    pub fn from_id(id: i16) -> Self {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            other => ControlRecordType::Other(other),
        }
    }
}

/// The key of a control record: `version i16, type i16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// The key's version; 0 is the only one defined, later ones are read as 0
    /// (as the Java client does).
    pub version: i16,
    /// What the marker says.
    pub kind: ControlRecordType,
}

impl ControlRecord {
    /// Parses a control record key.
    ///
    /// ```
    /// use odradek_core::records::{ControlRecord, ControlRecordType};
    ///
    /// let marker = ControlRecord::parse(Some(&[0, 0, 0, 1])).unwrap();
    /// assert_eq!(marker.kind, ControlRecordType::Commit);
    /// ```
    ///
    /// # Errors
    /// [`RecordsError::InvalidControlRecord`] for a null or short key, or a
    /// negative version.
    pub fn parse(key: Option<&[u8]>) -> Result<Self, RecordsError> {
        let invalid = |reason| RecordsError::InvalidControlRecord { reason };
        let key = key.ok_or_else(|| invalid("control record with a null key"))?;
        let [v0, v1, t0, t1] = *key
            .first_chunk::<4>()
            .ok_or_else(|| invalid("control record key shorter than 4 bytes"))?;
        let version = i16::from_be_bytes([v0, v1]);
        if version < 0 {
            return Err(invalid("negative control record key version"));
        }
        Ok(ControlRecord {
            version,
            kind: ControlRecordType::from_id(i16::from_be_bytes([t0, t1])),
        })
    }

    /// Encodes a version-0 key for a marker of this kind.
    pub fn key(kind: ControlRecordType) -> [u8; 4] {
        let [t0, t1] = kind.id().to_be_bytes();
        [0, 0, t0, t1]
    }
}
