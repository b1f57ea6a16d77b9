//! Checks that turn a pattern match into a finding only when the matched value is what it
//! looks like: enough randomness for a secret, a valid checksum for a card, an IBAN, a US
//! Social Security number, a UK NHS number, a Spanish DNI/NIE, a Dutch BSN or a GitHub token,
//! a JWT whose header decodes.

use base64::Engine as _;

/// Shannon entropy in bits per character. Bounded by log2(len), so rules pair it with a
/// minimum length.
pub fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        counts[b as usize] += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = n as f64;
    let h: f64 = counts.iter().filter(|&&c| c > 0).map(|&c| {
        let p = c as f64 / n;
        -p * p.log2()
    }).sum();
    h.max(0.0)
}

/// The Luhn checksum of a card number (spaces and dashes ignored), 13 to 19 digits.
pub fn luhn(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_digit(10)).collect::<Option<_>>().unwrap_or_default();
    if !(13..=19).contains(&digits.len()) || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| if i % 2 == 1 { let x = d * 2; if x > 9 { x - 9 } else { x } } else { d })
        .sum();
    sum % 10 == 0
}

/// IBAN: country code, check digits, and the mod-97 check of ISO 13616.
pub fn iban(s: &str) -> bool {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
    if !(15..=34).contains(&compact.len()) || !compact.is_ascii() {
        return false;
    }
    let (head, rest) = compact.split_at(4);
    if !head[..2].chars().all(|c| c.is_ascii_uppercase()) || !head[2..].chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let mut rem: u32 = 0;
    for c in rest.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// US Social Security number structure: area not 000, 666 or 900-999, group not 00, serial
/// not 0000, and not the well-known advertising numbers.
pub fn us_ssn(s: &str) -> bool {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 9 {
        return false;
    }
    let area: u32 = digits[..3].parse().unwrap_or(0);
    let group: u32 = digits[3..5].parse().unwrap_or(0);
    let serial: u32 = digits[5..].parse().unwrap_or(0);
    let advertising = ["078051120", "219099999", "123456789"];
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 && !advertising.contains(&digits.as_str())
}

/// UK NHS number: 10 digits (spaces or dashes allowed); the weighted sum of the first nine
/// (weights 10 down to 2) gives the tenth as `11 - sum % 11` (11 reads as 0, 10 is never
/// issued).
pub fn uk_nhs(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter(|c| !matches!(c, ' ' | '-')).map(|c| c.to_digit(10)).collect::<Option<_>>().unwrap_or_default();
    if digits.len() != 10 || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let sum: u32 = digits[..9].iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
    let check = match 11 - sum % 11 {
        11 => 0,
        10 => return false,
        c => c,
    };
    check == digits[9]
}

/// Spanish DNI (8 digits and a letter) or NIE (X, Y or Z, 7 digits and a letter): the letter
/// is `TRWAGMYFPDXBNJZSQVHLCKE[number % 23]`, the NIE's leading X/Y/Z counting as 0/1/2.
pub fn es_dni(s: &str) -> bool {
    const LETTERS: &[u8; 23] = b"TRWAGMYFPDXBNJZSQVHLCKE";
    let compact: String = s.chars().filter(|c| !matches!(c, ' ' | '-' | '.')).collect::<String>().to_ascii_uppercase();
    if compact.len() != 9 || !compact.is_ascii() {
        return false;
    }
    let (body, letter) = compact.split_at(8);
    let body = match body.as_bytes()[0] {
        b'X' => format!("0{}", &body[1..]),
        b'Y' => format!("1{}", &body[1..]),
        b'Z' => format!("2{}", &body[1..]),
        _ => body.to_owned(),
    };
    if !body.bytes().all(|b| b.is_ascii_digit()) || body.bytes().all(|b| b == b'0') {
        return false;
    }
    let Ok(n) = body.parse::<u32>() else { return false };
    letter.as_bytes()[0] == LETTERS[(n % 23) as usize]
}

/// Dutch citizen service number (BSN): 9 digits passing the "elfproef", the weighted sum
/// 9·d1 + 8·d2 + … + 2·d8 − d9 divisible by 11.
pub fn nl_bsn(s: &str) -> bool {
    let digits: Vec<i64> = s.chars().filter(|c| !matches!(c, ' ' | '-' | '.')).map(|c| c.to_digit(10).map(i64::from)).collect::<Option<_>>().unwrap_or_default();
    if digits.len() != 9 || digits.iter().all(|&d| d == digits[0]) {
        return false;
    }
    let sum: i64 = digits[..8].iter().zip((2..=9).rev()).map(|(d, w)| d * w).sum::<i64>() - digits[8];
    sum % 11 == 0
}

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// GitHub's token checksum: the last 6 characters are the CRC32 of the 30 random characters,
/// in base62 (zero-padded).
pub fn github_checksum(token: &str) -> bool {
    let Some((_, body)) = token.split_once('_') else { return false };
    if body.len() != 36 || !body.is_ascii() {
        return false;
    }
    let (random, check) = body.split_at(30);
    let mut v = crc32(random.as_bytes());
    let mut enc = [b'0'; 6];
    for slot in enc.iter_mut().rev() {
        *slot = BASE62[(v % 62) as usize];
        v /= 62;
    }
    enc == check.as_bytes()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A JWT whose header is base64url JSON with an `alg`.
pub fn jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let (Some(header), Some(payload)) = (parts.next(), parts.next()) else { return false };
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let decode = |p: &str| engine.decode(p.trim_end_matches('=')).ok().and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    decode(header).is_some_and(|h| h.get("alg").is_some()) && decode(payload).is_some_and(|p| p.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks() {
        assert!(luhn("4111 1111 1111 1111"));
        assert!(!luhn("4111 1111 1111 1112"));
        assert!(!luhn("0000 0000 0000 0000"));
        assert!(iban("GB82 WEST 1234 5698 7654 32"));
        assert!(!iban("GB82 WEST 1234 5698 7654 33"));
        assert!(us_ssn("536-22-1234"));
        assert!(!us_ssn("666-22-1234") || !us_ssn("000-12-3456"));
        assert!(!us_ssn("078-05-1120"));
        assert!(entropy("aaaaaaaa") < 0.1);
        assert!(entropy("f8Kq2LmZ9xTb4WcR") > 3.5);
        assert!(jwt("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"));
        assert!(!jwt("eyJub3QiOiJqd3QifQ.eyJ4IjoxfQ.sig"));
    }

    #[test]
    fn github_token_checksum() {
        // Built here: 30 random characters plus their CRC32 in base62.
        let random = "abcdefghijklmnopqrstuvwxyzABCD";
        let mut v = crc32(random.as_bytes());
        let mut enc = [b'0'; 6];
        for slot in enc.iter_mut().rev() {
            *slot = BASE62[(v % 62) as usize];
            v /= 62;
        }
        let token = format!("ghp_{random}{}", std::str::from_utf8(&enc).unwrap());
        assert!(github_checksum(&token));
        let mut broken = token.clone();
        broken.replace_range(10..11, "Z");
        assert!(!github_checksum(&broken));
    }

    #[test]
    fn national_identifiers() {
        // NHS: 943 476 591 → 9·10+4·9+3·8+4·7+7·6+6·5+5·4+9·3+1·2 = 299, 299 % 11 = 2, 11-2 = 9.
        assert!(uk_nhs("943 476 5919"));
        assert!(uk_nhs("943-476-5919"));
        assert!(!uk_nhs("943 476 5918"));
        assert!(!uk_nhs("1111111111"));
        assert!(!uk_nhs("94347659"));
        // DNI: 12345678 % 23 = 14 → Z; NIE X1234567 → 01234567 % 23 = 19 → L.
        assert!(es_dni("12345678Z"));
        assert!(es_dni("12345678-z"));
        assert!(es_dni("X1234567L"));
        assert!(!es_dni("12345678A"));
        assert!(!es_dni("X1234567Z"));
        assert!(!es_dni("00000000T"));
        assert!(!es_dni("1234567Z"));
        // BSN: 111222333 → 9+8+7+2·6+2·5+2·4+3·3+3·2 − 3 = 66, divisible by 11.
        assert!(nl_bsn("111222333"));
        assert!(nl_bsn("1112.22.333"));
        assert!(!nl_bsn("111222334"));
        assert!(!nl_bsn("999999999"));
        assert!(!nl_bsn("11122233"));
    }
}
