//! Human-friendly units for settings: sizes (`"2 MiB"`) and durations (`"30s"`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A size in bytes, written as a number of bytes or with a unit: `"512 KB"`, `"2 MiB"`, `"1G"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// A duration, written as a number of seconds or with a unit: `"500ms"`, `"30s"`, `"2m"`, `"1h"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seconds(pub Duration);

impl ByteSize {
    /// The size as a `usize`, saturating on 32-bit targets.
    #[must_use]
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

/// Splits `"30 s"` into `(30.0, "s")`.
fn split_unit(text: &str) -> Option<(f64, String)> {
    let text = text.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number: f64 = text[..end].parse().ok()?;
    Some((number, text[end..].trim().to_ascii_lowercase()))
}

impl std::str::FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (number, unit) = split_unit(text).ok_or_else(|| format!("`{text}` is not a size"))?;
        let factor: u64 = match unit.as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1_000,
            "kib" => 1 << 10,
            "m" | "mb" => 1_000_000,
            "mib" => 1 << 20,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1 << 30,
            _ => return Err(format!("unknown size unit `{unit}` in `{text}`")),
        };
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "sizes in settings are far below 2^52 bytes"
        )]
        Ok(Self((number * factor as f64) as u64))
    }
}

impl std::str::FromStr for Seconds {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (number, unit) =
            split_unit(text).ok_or_else(|| format!("`{text}` is not a duration"))?;
        let seconds = match unit.as_str() {
            "ms" => number / 1000.0,
            "" | "s" | "sec" | "secs" => number,
            "m" | "min" => number * 60.0,
            "h" => number * 3600.0,
            _ => return Err(format!("unknown duration unit `{unit}` in `{text}`")),
        };
        Duration::try_from_secs_f64(seconds)
            .map(Self)
            .map_err(|_| format!("`{text}` is out of range"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{} MiB", n >> 20),
            n if n >= 1 << 10 && n % (1 << 10) == 0 => write!(f, "{} KiB", n >> 10),
            n => write!(f, "{n} B"),
        }
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "{}s", millis / 1000)
        } else {
            write!(f, "{millis}ms")
        }
    }
}

/// Both types are written as strings and read from numbers or strings.
macro_rules! number_or_text {
    ($ty:ty, $expecting:literal, $from_int:expr) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Expect;
                impl Visitor<'_> for Expect {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<$ty, E> {
                        Ok($from_int(v))
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<$ty, E> {
                        u64::try_from(v)
                            .map($from_int)
                            .map_err(|_| E::custom("must not be negative"))
                    }
                    fn visit_f64<E: de::Error>(self, v: f64) -> Result<$ty, E> {
                        if v < 0.0 {
                            return Err(E::custom("must not be negative"));
                        }
                        v.to_string().parse().map_err(E::custom)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_any(Expect)
            }
        }
    };
}

number_or_text!(
    ByteSize,
    "a size such as \"2 MiB\" or a number of bytes",
    ByteSize
);
number_or_text!(
    Seconds,
    "a duration such as \"30s\" or a number of seconds",
    |v| Seconds(Duration::from_secs(v))
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sizes_with_units() {
        assert_eq!("2 MiB".parse::<ByteSize>().unwrap(), ByteSize(2 << 20));
        assert_eq!("512kb".parse::<ByteSize>().unwrap(), ByteSize(512_000));
        assert_eq!("10".parse::<ByteSize>().unwrap(), ByteSize(10));
        assert!("2 parsecs".parse::<ByteSize>().is_err());
        assert!("lots".parse::<ByteSize>().is_err());
    }

    #[test]
    fn parses_durations_with_units() {
        assert_eq!(
            "500ms".parse::<Seconds>().unwrap().0,
            Duration::from_millis(500)
        );
        assert_eq!("2m".parse::<Seconds>().unwrap().0, Duration::from_secs(120));
        assert_eq!(
            "1.5s".parse::<Seconds>().unwrap().0,
            Duration::from_millis(1500)
        );
        assert!("soon".parse::<Seconds>().is_err());
    }

    #[test]
    fn round_trips_through_display() {
        for size in [ByteSize(2 << 20), ByteSize(3 << 10), ByteSize(17)] {
            assert_eq!(size.to_string().parse::<ByteSize>().unwrap(), size);
        }
        for duration in [
            Seconds(Duration::from_secs(30)),
            Seconds(Duration::from_millis(250)),
        ] {
            assert_eq!(duration.to_string().parse::<Seconds>().unwrap(), duration);
        }
    }
}
