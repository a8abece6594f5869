//! Bounds on the answers Sluice builds itself (policy rejections answered whole, one entry per
//! topic, partition or resource of the request).
//!
//! A hostile request can name millions of small entries; answered entry by entry with a message
//! each, it once made a 245 MB answer out of a 16 MiB Produce request. An [`AnswerBound`] keeps an
//! answer proportional to its request and within the frame limit:
//! - the text of error messages in one answer is at most as long as the request (at least
//!   4 KiB): past that, entries carry a null message and clients fall back to their text for the
//!   error code, and no copy of the message is made for them;
//! - the encoded answer is at most 4 times the request (at least 64 KiB) and at most
//!   `limits.max_frame_bytes`, checked from the computed size before anything is encoded; a
//!   request whose answer would be larger is refused ([`AnswerBound::check`]), and the session
//!   closes the connection, as a broker does with a request it cannot answer.

use std::cell::Cell;

use kafka_protocol::protocol::StrBytes;

/// Smallest message budget of an answer, bytes.
const MESSAGE_BYTES_MIN: usize = 4 << 10;
/// Smallest size limit of an answer, bytes.
const ANSWER_BYTES_MIN: usize = 64 << 10;
/// An answer may be this many times the size of its request.
const ANSWER_PER_REQUEST_BYTE: usize = 4;

/// The limits of one answer. See the module docs.
#[derive(Debug)]
pub struct AnswerBound {
    max_bytes: usize,
    message_bytes_left: Cell<usize>,
}

impl AnswerBound {
    /// The bound of the answer to a request of `request_bytes` (its payload), under a frame
    /// limit of `max_frame_bytes`.
    pub fn for_request(request_bytes: usize, max_frame_bytes: usize) -> Self {
        AnswerBound {
            max_bytes: request_bytes
                .saturating_mul(ANSWER_PER_REQUEST_BYTE)
                .max(ANSWER_BYTES_MIN)
                .min(max_frame_bytes),
            message_bytes_left: Cell::new(request_bytes.max(MESSAGE_BYTES_MIN)),
        }
    }

    /// The largest answer allowed, bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// `message` for one more entry while the message budget lasts, else `None` (and then
    /// nothing is copied).
    pub fn message(&self, message: &str) -> Option<StrBytes> {
        self.take_message(message.len())
            .then(|| StrBytes::from_string(message.to_owned()))
    }

    /// Whether one more entry may carry a message of `len` bytes (then counted against the
    /// budget).
    pub fn take_message(&self, len: usize) -> bool {
        let left = self.message_bytes_left.get();
        let fits = len <= left;
        if fits {
            self.message_bytes_left.set(left - len);
        }
        fits
    }

    /// Checks the computed size of an answer.
    ///
    /// # Errors
    /// A message naming both sizes when `bytes` exceeds [`AnswerBound::max_bytes`].
    pub fn check(&self, bytes: usize) -> Result<(), String> {
        if bytes > self.max_bytes {
            Err(format!(
                "an answer of {bytes} bytes would exceed {} (4 times the request, at most limits.max_frame_bytes); request refused",
                self.max_bytes
            ))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_follow_the_request_and_the_frame_limit() {
        let b = AnswerBound::for_request(100, 1 << 20);
        assert_eq!(b.max_bytes(), ANSWER_BYTES_MIN);
        let b = AnswerBound::for_request(1 << 20, 100 << 20);
        assert_eq!(b.max_bytes(), 4 << 20);
        let b = AnswerBound::for_request(64 << 20, 100 << 20);
        assert_eq!(b.max_bytes(), 100 << 20);
        assert!(b.check(100 << 20).is_ok());
        assert!(b.check((100 << 20) + 1).is_err());
    }

    #[test]
    fn messages_stop_when_their_budget_is_spent() {
        let b = AnswerBound::for_request(10, 1 << 20);
        let m = "x".repeat(1000);
        let carried = (0..10).filter(|_| b.message(&m).is_some()).count();
        assert_eq!(carried, MESSAGE_BYTES_MIN / 1000);
    }
}
