//! `fogchain export` / `fogchain import`: a node's chain as geth's RLP block stream (the format
//! of `geth export` / `geth import`: blocks back to back, each an RLP list, no framing), for
//! backup and migration.
//!
//! Import applies every block with [`Chain::apply_block`], the code a node applies committed
//! blocks with: the stream must link to the stored head, each header must follow the chain's
//! rules, and each Fogchain block must be sealed by a member (the genesis members: a stream is
//! checked against the membership the genesis file names). Blocks already stored (same hash at
//! the same height) are passed over, so an interrupted import can be run again.

use alloy_primitives::B256;
use fogchain_node::chain::{Applied, Chain, ChainError, SealedBlock};
use fogchain_storage::ChainReader;
use std::io::{Read, Write};

/// Largest block the importer reads, bytes (a Fogchain block is bounded by the gas limit and
/// `maxBlockTransactions`; this bounds the memory a hostile stream can make the importer take).
pub const MAX_IMPORT_BLOCK_BYTES: usize = 64 << 20;

/// Why an export or import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ChainFileError {
    /// Reading or writing the stream failed.
    #[error("block stream: {0}")]
    Io(#[from] std::io::Error),
    /// The chain could not be read or a block could not be applied for a local fault.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The stream is not a sequence of RLP blocks.
    #[error("item {index} of the stream: {reason}")]
    Malformed {
        /// Position in the stream (0-based).
        index: u64,
        /// Why.
        reason: String,
    },
    /// A block does not link to the stored chain or breaks a rule.
    #[error("block {number} ({hash}) refused: {reason}")]
    Refused {
        /// Block number.
        number: u64,
        /// Block hash.
        hash: B256,
        /// Why.
        reason: String,
    },
    /// A block is not stored.
    #[error("block {0} is not in the chain (head is {1})")]
    Missing(u64, u64),
}

/// Writes canonical blocks `from..=to` of `chain` to `out` as RLP; returns how many.
pub fn export(chain: &Chain, out: &mut impl Write, from: u64, to: u64) -> Result<u64, ChainFileError> {
    let (head, _) = chain.head();
    for number in from..=to {
        let block = chain.encoded_block(number)?.ok_or(ChainFileError::Missing(number, head))?;
        out.write_all(&block)?;
    }
    out.flush()?;
    Ok(to.saturating_sub(from) + 1)
}

/// What [`import`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Blocks applied.
    pub imported: u64,
    /// Blocks already stored (same hash at that height), passed over.
    pub known: u64,
}

/// Reads RLP blocks from `input` and applies each to `chain`; stops at the first block that
/// does not apply (the blocks before it stay imported).
pub fn import(chain: &Chain, input: &mut impl Read) -> Result<ImportSummary, ChainFileError> {
    let mut summary = ImportSummary::default();
    let mut index = 0u64;
    while let Some(bytes) = next_item(input, index)? {
        let malformed = |reason: String| ChainFileError::Malformed { index, reason };
        let block = SealedBlock::decode(&bytes).map_err(|e| malformed(format!("not a block: {e}")))?;
        let (number, hash) = (block.header().number, block.hash());
        let refused = |reason: String| ChainFileError::Refused { number, hash, reason };
        let (head, head_hash) = chain.head();
        if number <= head {
            match chain.storage().block_hash(number).map_err(ChainError::from)? {
                Some(stored) if stored == hash => {
                    summary.known += 1;
                    index += 1;
                    continue;
                }
                stored => {
                    return Err(refused(format!("the stored chain has {stored:?} at this height")));
                }
            }
        }
        match chain.apply_block(&block, None, None, |_| None) {
            Ok(Applied::Head { .. }) => summary.imported += 1,
            Ok(Applied::Stale(_)) => {
                return Err(refused(format!(
                    "parent {} is not the head {head_hash} (#{head})",
                    block.header().parent_hash
                )))
            }
            Err(e) if e.is_fault() => return Err(e.into()),
            Err(e) => return Err(refused(e.to_string())),
        }
        index += 1;
    }
    Ok(summary)
}

/// The next RLP item of the stream (its prefix and payload), `None` at the end.
fn next_item(input: &mut impl Read, index: u64) -> Result<Option<Vec<u8>>, ChainFileError> {
    let malformed = |reason: String| ChainFileError::Malformed { index, reason };
    let mut first = [0u8; 1];
    if input.read(&mut first)? == 0 {
        return Ok(None);
    }
    let mut item = vec![first[0]];
    let payload = match first[0] {
        0xc0..=0xf7 => usize::from(first[0] - 0xc0),
        0xf8..=0xff => {
            let mut len = vec![0u8; usize::from(first[0] - 0xf7)];
            input.read_exact(&mut len)?;
            item.extend_from_slice(&len);
            if len[0] == 0 {
                return Err(malformed("non-canonical length".into()));
            }
            len.iter()
                .try_fold(0usize, |acc, b| acc.checked_mul(256).map(|v| v + usize::from(*b)))
                .ok_or_else(|| malformed("length overflows".into()))?
        }
        other => return Err(malformed(format!("starts with 0x{other:02x}, not an RLP list"))),
    };
    if payload > MAX_IMPORT_BLOCK_BYTES {
        return Err(malformed(format!("{payload} bytes, more than {MAX_IMPORT_BLOCK_BYTES}")));
    }
    let start = item.len();
    item.resize(start + payload, 0);
    input.read_exact(&mut item[start..]).map_err(|e| malformed(format!("truncated: {e}")))?;
    Ok(Some(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(bytes: &[u8]) -> Result<Vec<Vec<u8>>, ChainFileError> {
        let mut input = bytes;
        let mut out = Vec::new();
        while let Some(item) = next_item(&mut input, out.len() as u64)? {
            out.push(item);
        }
        Ok(out)
    }

    #[test]
    fn the_stream_is_cut_into_rlp_lists() {
        // [] , [0x01], a long list of 60 bytes (0xf8 0x3c ...).
        let mut stream = vec![0xc0, 0xc1, 0x01, 0xf8, 60];
        stream.extend([0x80; 60]);
        let got = items(&stream).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1], vec![0xc1, 0x01]);
        assert_eq!(got[2].len(), 62);
        assert!(items(&[]).unwrap().is_empty());
    }

    #[test]
    fn hostile_streams_are_refused_with_bounded_memory() {
        let refused = |bytes: &[u8]| matches!(items(bytes), Err(ChainFileError::Malformed { .. }));
        // Not a list, a truncated list, a length with a leading zero, a length over the bound
        // (never allocated), a length that overflows usize.
        assert!(refused(&[0x80]));
        assert!(refused(&[0xc3, 0x01]));
        assert!(refused(&[0xf9, 0x00, 0x40]));
        assert!(refused(&[0xfb, 0x10, 0x00, 0x00, 0x00]));
        assert!(refused(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    }
}
