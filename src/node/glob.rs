//! Redis-compatible glob matching (`KEYS`, `SCAN MATCH`, `PSUBSCRIBE`, `CONFIG GET`, and the
//! `HSCAN`/`SSCAN`/`ZSCAN` of the type families).
//!
//! Semantics follow Redis's `stringmatchlen`: `*` any run, `?` one byte, `[abc]`, `[^abc]`,
//! `[a-z]` (reversed ranges allowed), `\x` a literal `x` (also inside brackets); an
//! unterminated `[` class ends at the end of the pattern. Matching is byte-wise.

/// True if `text` matches the glob `pattern`.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    matches_case(pattern, text, false)
}

/// [`matches()`], optionally ignoring ASCII case (CONFIG GET parameter names).
pub fn matches_case(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    // Redis's loop never runs for an empty string, so only an empty pattern matches it (not
    // even `*`; KEYS and SCAN special-case a lone `*` before matching).
    if text.is_empty() {
        return pattern.is_empty();
    }
    // Iterative matching with one backtrack point: on a mismatch, retry from the most recent
    // `*` consuming one more byte. A later `*` supersedes an earlier one, which keeps this
    // linear-ish instead of Redis's exponential recursion on patterns like `*a*a*a*b`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    let (hit, next) = class(pattern, p + 1, text[t], nocase);
                    if hit {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() => {
                    if eq(pattern[p + 1], text[t], nocase) {
                        p += 2;
                        t += 1;
                        continue;
                    }
                }
                c => {
                    if eq(c, text[t], nocase) {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn eq(a: u8, b: u8, nocase: bool) -> bool {
    a == b || (nocase && a.eq_ignore_ascii_case(&b))
}

/// Matches byte `c` against the class starting at `pattern[i]` (just after `[`). Returns
/// whether it matched and the pattern index after the class.
fn class(pattern: &[u8], mut i: usize, c: u8, nocase: bool) -> (bool, usize) {
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    loop {
        match pattern.get(i) {
            // Unterminated: the class ends with the pattern.
            None => break,
            Some(b']') => {
                i += 1;
                break;
            }
            Some(b'\\') if i + 1 < pattern.len() => {
                hit |= eq(pattern[i + 1], c, nocase);
                i += 2;
            }
            Some(&lo) if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() => {
                let hi = pattern[i + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                let c2 = if nocase { c.to_ascii_lowercase() } else { c };
                let (l2, h2) = if nocase {
                    (lo.to_ascii_lowercase(), hi.to_ascii_lowercase())
                } else {
                    (lo, hi)
                };
                hit |= (lo..=hi).contains(&c) || (l2..=h2).contains(&c2);
                i += 3;
            }
            Some(&x) => {
                hit |= eq(x, c, nocase);
                i += 1;
            }
        }
    }
    (hit != negate, i)
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn redis_glob_cases() {
        let yes: &[(&str, &str)] = &[
            ("", ""),
            ("*", "abc"),
            ("a*", "abc"),
            ("*c", "abc"),
            ("a*c", "ac"),
            ("a?c", "abc"),
            ("h[ae]llo", "hello"),
            ("h[^e]llo", "hallo"),
            ("h[a-b]llo", "hbllo"),
            ("h[b-a]llo", "hallo"),
            ("h\\*llo", "h*llo"),
            ("[\\]]", "]"),
            ("*a*a*b", "aaaaaaaaaab"),
            ("user:*:name", "user:42:name"),
            ("[abc", "b"),
        ];
        for (p, t) in yes {
            assert!(matches(p.as_bytes(), t.as_bytes()), "{p} should match {t}");
        }
        let no: &[(&str, &str)] = &[
            ("a*", "bac"),
            ("a?c", "ac"),
            ("h[^e]llo", "hello"),
            ("h[a-b]llo", "hcllo"),
            ("h\\*llo", "hallo"),
            ("*a*a*b", "aaaaaaaaaa"),
            ("abc", "abcd"),
            ("", "a"),
            ("*", ""),
        ];
        for (p, t) in no {
            assert!(
                !matches(p.as_bytes(), t.as_bytes()),
                "{p} should not match {t}"
            );
        }
    }
}
