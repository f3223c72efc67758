//! Control records: the transaction markers brokers write into control batches.
//!
//! A control record's key is `version i16, type i16` (type 0 abort, 1 commit); its
//! value is `version i16, coordinator_epoch i32`. Control records are never delivered
//! to the application as data.

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::record::Record;

/// The kind of a control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlKind {
    /// The producer's transaction aborted (type 0).
    Abort,
    /// The producer's transaction committed (type 1).
    Commit,
    /// A type this client does not know (ignored, as the Java client does).
    Unknown(i16),
}

impl ControlKind {
    /// The kind for a type code.
    pub fn from_type(t: i16) -> Self {
        match t {
            0 => Self::Abort,
            1 => Self::Commit,
            other => Self::Unknown(other),
        }
    }

    /// The type code.
    pub fn type_code(self) -> i16 {
        match self {
            Self::Abort => 0,
            Self::Commit => 1,
            Self::Unknown(t) => t,
        }
    }
}

/// A parsed control record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRecord {
    /// The key's version (0 today).
    pub version: i16,
    /// Abort, commit, or unknown.
    pub kind: ControlKind,
    /// The transaction coordinator's epoch (-1 when the value is absent or of an
    /// unknown kind).
    pub coordinator_epoch: i32,
}

impl ControlRecord {
    /// Parse a control record's key and value.
    pub fn parse(record: &Record<'_>) -> Result<Self, DecodeError> {
        Self::parse_parts(record.key(), record.value())
    }

    /// Parse from a key and value.
    pub fn parse_parts(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Self, DecodeError> {
        let Some(key) = key else {
            return Err(DecodeError::Invalid {
                what: "control record key",
                reason: "null",
            });
        };
        let mut r = Reader::new(key);
        let version = r.i16("control record key version")?;
        if version < 0 {
            return Err(DecodeError::Invalid {
                what: "control record key version",
                reason: "negative",
            });
        }
        let kind = ControlKind::from_type(r.i16("control record type")?);
        // Newer versions may append fields; version 0 is exactly four bytes.
        if version == 0 {
            r.finish("control record key")?;
        }
        let coordinator_epoch = match (kind, value) {
            (ControlKind::Abort | ControlKind::Commit, Some(v)) => {
                let mut r = Reader::new(v);
                let _value_version = r.i16("end transaction marker version")?;
                r.i32("end transaction marker coordinator epoch")?
            }
            (ControlKind::Abort | ControlKind::Commit, None) => {
                return Err(DecodeError::Invalid {
                    what: "end transaction marker",
                    reason: "null value",
                });
            }
            (ControlKind::Unknown(_), _) => -1,
        };
        Ok(Self {
            version,
            kind,
            coordinator_epoch,
        })
    }

    /// Encode the key (version 0).
    pub fn encode_key(kind: ControlKind) -> [u8; 4] {
        let mut k = [0u8; 4];
        k[2..].copy_from_slice(&kind.type_code().to_be_bytes());
        k
    }

    /// Encode the end-transaction-marker value (version 0).
    pub fn encode_value(coordinator_epoch: i32) -> [u8; 6] {
        let mut v = [0u8; 6];
        v[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_abort_and_commit() {
        for kind in [ControlKind::Abort, ControlKind::Commit] {
            let k = ControlRecord::encode_key(kind);
            let v = ControlRecord::encode_value(7);
            let c = ControlRecord::parse_parts(Some(&k), Some(&v)).unwrap();
            assert_eq!(
                c,
                ControlRecord {
                    version: 0,
                    kind,
                    coordinator_epoch: 7
                }
            );
        }
        assert_eq!(ControlRecord::encode_key(ControlKind::Commit), [0, 0, 0, 1]);
    }

    #[test]
    fn malformed_control_records() {
        let v = ControlRecord::encode_value(1);
        assert!(ControlRecord::parse_parts(None, Some(&v)).is_err());
        assert!(ControlRecord::parse_parts(Some(&[0, 0, 0]), Some(&v)).is_err());
        assert!(ControlRecord::parse_parts(Some(&[0, 0, 0, 0, 9]), Some(&v)).is_err());
        assert!(ControlRecord::parse_parts(Some(&[0, 0, 0, 1]), None).is_err());
        assert!(ControlRecord::parse_parts(Some(&[0, 0, 0, 1]), Some(&[0, 0, 0])).is_err());
        // Unknown types parse (and are ignored by the filter).
        let c = ControlRecord::parse_parts(Some(&[0, 0, 0, 5]), None).unwrap();
        assert_eq!(c.kind, ControlKind::Unknown(5));
        // A newer key version may carry more bytes.
        let c = ControlRecord::parse_parts(Some(&[0, 1, 0, 0, 0xaa]), Some(&v)).unwrap();
        assert_eq!(c.kind, ControlKind::Abort);
    }
}
