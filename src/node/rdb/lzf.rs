//! LZF decompression (the format of liblzf, which Redis uses for strings in RDB files and
//! DUMP payloads when `rdbcompression` is on). Only decompression: the node writes strings
//! uncompressed, which every Redis loads.

/// Decompresses `input` into exactly `len` bytes; `None` if the data is malformed or does
/// not produce `len` bytes.
pub(crate) fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    // Grown as data arrives rather than reserved from the declared length, which a hostile
    // payload controls; each input byte yields at most 264 output bytes.
    let mut out: Vec<u8> = Vec::with_capacity(len.min(input.len().saturating_mul(8)));
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            // A literal run of ctrl + 1 bytes.
            let run = input.get(i..i + ctrl + 1)?;
            out.extend_from_slice(run);
            i += ctrl + 1;
        } else {
            // A back reference: length in the top 3 bits (7 = one more byte follows),
            // offset in the low 5 bits and the next byte.
            let mut n = ctrl >> 5;
            if n == 7 {
                n += usize::from(*input.get(i)?);
                i += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            let start = out.len().checked_sub(back)?;
            // Byte by byte: the source may overlap what is being written.
            for k in 0..n + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > len {
            return None;
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::decompress;

    #[test]
    fn literals_and_overlapping_back_references() {
        // "abc" literal, then a back reference of length 6 at distance 3: "abcabcabc".
        let data = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(decompress(&data, 9).as_deref(), Some(&b"abcabcabc"[..]));
        assert_eq!(decompress(&data, 8), None);
        assert_eq!(decompress(&[5, b'a'], 6), None);
        assert_eq!(decompress(&[(1 << 5), 9], 3), None);
    }
}
