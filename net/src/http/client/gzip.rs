//! gzip (RFC 1952) request bodies from one reused deflate state, so compressing a request does
//! not allocate the compressor's tables again.

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// gzip header: magic, CM=deflate, no flags, no mtime, no extra flags, OS=unknown.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// A reusable gzip compressor (one per pool).
pub(crate) struct Gzip {
    deflate: Compress,
}

impl Gzip {
    pub fn new() -> Self {
        Self {
            deflate: Compress::new(Compression::fast(), false),
        }
    }

    /// Replace `out` with the gzip member of `data`.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&HEADER);
        self.deflate.reset();
        out.reserve(data.len() / 2 + 64);
        loop {
            let consumed = self.deflate.total_in() as usize;
            match self
                .deflate
                .compress_vec(&data[consumed..], out, FlushCompress::Finish)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => out.reserve(out.capacity().max(64)),
                // Raw deflate on a reset state does not fail; never loop on an error.
                Err(_) => break,
            }
        }
        let mut crc = Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn round_trips_through_a_standard_decoder_and_is_reusable() {
        let mut gzip = Gzip::new();
        let mut out = Vec::new();
        for data in [
            b"".to_vec(),
            br#"{"id":"abc","imp":[{"id":"1"}]}"#.repeat(200),
            (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ] {
            gzip.compress(&data, &mut out);
            let mut decoded = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut decoded)
                .unwrap();
            assert_eq!(decoded, data);
        }
    }
}
