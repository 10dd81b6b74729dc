//! The one memory bound of the consumer (`queued.max.messages.kbytes`).
//!
//! Everything that grows with the fetched data is charged here while the
//! consumer holds it: the response a fetch may bring (reserved at its
//! upper bound when the request goes out, until the answer is handled),
//! each received fetch response (until the last of its batches leaves the
//! buffer, since the batches are slices of it), and each batch's
//! decompressed records (until the batch leaves the buffer). Charges free
//! themselves when dropped, so no path that discards data (a seek, a
//! revocation, a dropped connection) can forget to give its bytes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The bytes currently charged against the bound.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemoryLedger(Arc<AtomicUsize>);

impl MemoryLedger {
    /// Charges `bytes` until the returned charge is dropped.
    pub(crate) fn charge(&self, bytes: usize) -> Charge {
        self.0.fetch_add(bytes, Ordering::Relaxed);
        Charge {
            ledger: self.0.clone(),
            bytes,
        }
    }

    /// Bytes charged now.
    pub(crate) fn in_use(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bytes held against the bound; dropping it gives them back.
#[derive(Debug)]
pub(crate) struct Charge {
    ledger: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.ledger.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_give_their_bytes_back_when_dropped() {
        let ledger = MemoryLedger::default();
        let frame = Arc::new(ledger.charge(1000));
        let a = frame.clone();
        let decompressed = ledger.charge(300);
        assert_eq!(ledger.in_use(), 1300);
        drop(frame);
        assert_eq!(ledger.in_use(), 1300, "a batch still holds the frame");
        drop(a);
        assert_eq!(ledger.in_use(), 300);
        drop(decompressed);
        assert_eq!(ledger.in_use(), 0);
    }
}
