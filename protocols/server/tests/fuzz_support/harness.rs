//! The checks the `proxy` fuzz target and the corpus replay share: for any
//! bytes a client sends first on a PROXY listener, the parser never panics,
//! never claims more than it was given or more than `MAX_HEADER`, answers
//! the same for every prefix of a header it accepts (incremental), and
//! once it refuses a prefix it refuses every longer input too.

use mailroom_server::proxy::{Decoded, MAX_HEADER, decode};

pub(crate) fn run(data: &[u8]) {
    match decode(data) {
        Ok(Decoded::Complete { header, length }) => {
            assert!(length <= data.len() && length <= MAX_HEADER);
            assert!(header.version() == 1 || header.version() == 2);
            // the same header from exactly its bytes, and "need more" from
            // every shorter prefix (checked at a bounded number of cuts)
            assert_eq!(
                decode(&data[..length]),
                Ok(Decoded::Complete { header, length })
            );
            let step = (length / 64).max(1);
            for cut in (0..length).step_by(step) {
                assert_eq!(decode(&data[..cut]), Ok(Decoded::Incomplete), "cut {cut}");
            }
        }
        Ok(Decoded::Incomplete) => {
            assert!(data.len() < MAX_HEADER);
        }
        Err(e) => {
            // refusing is final: more bytes do not make it acceptable
            let mut longer = data.to_vec();
            longer.extend_from_slice(b"\r\n\0\0");
            assert!(
                decode(&longer).is_err(),
                "{e} then accepted with more bytes"
            );
            let _ = e.to_string();
        }
    }
}
