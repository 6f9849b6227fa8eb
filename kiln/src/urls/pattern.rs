//! Path patterns: parsing `/polls/{id:int}/`, matching paths against them and
//! building paths from parameters.

use std::fmt;

use percent_encoding::percent_decode_str;

/// What a path parameter accepts, like Django's path converters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Converter {
    /// Any non-empty text without `/` (the default).
    Str,
    /// Digits, without sign: `0`, `42`.
    Int,
    /// Letters, digits, `-` and `_`.
    Slug,
    /// A UUID in its hyphenated form.
    Uuid,
    /// The rest of the path, `/` included (`{*rest}`).
    Path,
}

impl Converter {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "str" => Self::Str,
            "int" => Self::Int,
            "slug" => Self::Slug,
            "uuid" => Self::Uuid,
            "path" => Self::Path,
            _ => return None,
        })
    }

    /// Whether a decoded segment value fits this converter.
    #[must_use]
    pub fn accepts(self, value: &str) -> bool {
        match self {
            Self::Str => !value.is_empty() && !value.contains('/'),
            Self::Int => !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()),
            Self::Slug => {
                !value.is_empty()
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            }
            Self::Uuid => uuid::Uuid::try_parse(value).is_ok() && value.len() == 36,
            Self::Path => !value.is_empty(),
        }
    }
}

impl fmt::Display for Converter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Str => "str",
            Self::Int => "int",
            Self::Slug => "slug",
            Self::Uuid => "uuid",
            Self::Path => "path",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String, Converter),
    Rest(String),
}

/// A parsed path pattern such as `/polls/{id:int}/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    segments: Vec<Segment>,
    trailing_slash: bool,
}

/// A malformed pattern, or parameters that do not fit one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// The pattern text is malformed.
    #[error("bad route pattern `{pattern}`: {problem}")]
    Malformed {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        problem: String,
    },
    /// A parameter was not given.
    #[error("missing parameter `{0}`")]
    Missing(String),
    /// A value does not fit its converter.
    #[error("parameter `{param}` = {value:?} is not a valid {converter}")]
    Mismatch {
        /// The parameter.
        param: String,
        /// The value.
        value: String,
        /// The converter.
        converter: Converter,
    },
}

impl Pattern {
    /// Parses a pattern.
    ///
    /// # Errors
    ///
    /// [`PatternError::Malformed`] when the pattern does not start with `/`,
    /// has an unknown converter, an empty or repeated parameter name, or a
    /// `{*rest}` that is not last.
    pub fn parse(source: &str) -> Result<Self, PatternError> {
        let malformed = |problem: String| PatternError::Malformed {
            pattern: source.to_owned(),
            problem,
        };
        let Some(body) = source.strip_prefix('/') else {
            return Err(malformed("a pattern must start with `/`".into()));
        };
        if source.contains("//") {
            return Err(malformed("empty segment (`//`)".into()));
        }
        let trailing_slash = body.ends_with('/') || body.is_empty();
        let mut segments = Vec::new();
        let parts: Vec<&str> = body.trim_end_matches('/').split('/').collect();
        for (index, part) in parts.iter().enumerate() {
            if part.is_empty() {
                if parts.len() == 1 {
                    continue;
                }
                return Err(malformed("empty segment (`//`)".into()));
            }
            let segment = if let Some(inner) =
                part.strip_prefix('{').and_then(|p| p.strip_suffix('}'))
            {
                if let Some(name) = inner.strip_prefix('*') {
                    if index + 1 != parts.len() || trailing_slash && !body.is_empty() {
                        return Err(malformed(format!("`{{*{name}}}` must be the last segment")));
                    }
                    Segment::Rest(valid_name(name).map_err(malformed)?.to_owned())
                } else {
                    let (name, converter) = match inner.split_once(':') {
                        Some((name, converter)) => (
                            name,
                            Converter::parse(converter).ok_or_else(|| {
                                malformed(format!(
                                    "unknown converter `{converter}`; use str, int, slug, uuid or path"
                                ))
                            })?,
                        ),
                        None => (inner, Converter::Str),
                    };
                    if converter == Converter::Path {
                        return Err(malformed(format!(
                            "use `{{*{name}}}` for the rest of the path"
                        )));
                    }
                    Segment::Param(valid_name(name).map_err(malformed)?.to_owned(), converter)
                }
            } else if part.contains(['{', '}']) {
                return Err(malformed(format!(
                    "`{part}`: a parameter must fill a whole segment, as in `/{{id}}/`"
                )));
            } else {
                Segment::Literal((*part).to_owned())
            };
            segments.push(segment);
        }
        let pattern = Self {
            source: source.to_owned(),
            segments,
            trailing_slash,
        };
        let mut names: Vec<&str> = pattern.params().map(|(name, _)| name).collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(malformed(format!("parameter `{}` appears twice", pair[0])));
        }
        Ok(pattern)
    }

    /// Joins a mount prefix (`/polls`) and a route pattern (`/{id}/`).
    ///
    /// # Errors
    ///
    /// As [`Pattern::parse`].
    pub fn join(prefix: &str, pattern: &str) -> Result<Self, PatternError> {
        Self::parse(&format!("{}{pattern}", prefix.trim_end_matches('/')))
    }

    /// The parameters and their converters, in order.
    pub fn params(&self) -> impl Iterator<Item = (&str, Converter)> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Param(name, converter) => Some((name.as_str(), *converter)),
            Segment::Rest(name) => Some((name.as_str(), Converter::Path)),
            Segment::Literal(_) => None,
        })
    }

    /// Whether matching needs more than axum's router does: any one-segment
    /// parameter, since axum accepts an encoded `/` (`%2F`) in a segment and
    /// knows no converters, while Kiln's `str` refuses `/` as Django's does.
    #[must_use]
    pub fn needs_converter_check(&self) -> bool {
        self.params()
            .any(|(_, converter)| converter != Converter::Path)
    }

    /// The pattern in axum's syntax (converters removed).
    #[must_use]
    pub fn axum_path(&self) -> String {
        let mut path = String::new();
        for segment in &self.segments {
            path.push('/');
            match segment {
                Segment::Literal(text) => path.push_str(text),
                Segment::Param(name, _) => {
                    path.push('{');
                    path.push_str(name);
                    path.push('}');
                }
                Segment::Rest(name) => {
                    path.push_str("{*");
                    path.push_str(name);
                    path.push('}');
                }
            }
        }
        if self.trailing_slash && !matches!(self.segments.last(), Some(Segment::Rest(_))) {
            path.push('/');
        }
        if path.is_empty() {
            path.push('/');
        }
        path
    }

    /// The axum path with parameter names blanked, to detect routes that
    /// differ only in parameter names (which axum's router cannot tell apart).
    pub(crate) fn shape(&self) -> String {
        let mut shape = self.axum_path();
        for (name, _) in self.params() {
            shape = shape
                .replace(&format!("{{{name}}}"), "{}")
                .replace(&format!("{{*{name}}}"), "{*}");
        }
        shape
    }

    /// Whether `path` (as sent, percent-encoded) matches this pattern, converters included.
    #[must_use]
    pub fn matches(&self, path: &str) -> bool {
        self.captures(path).is_some()
    }

    /// The decoded parameter values of `path`, if it matches.
    #[must_use]
    pub fn captures(&self, path: &str) -> Option<Vec<(&str, String)>> {
        let body = path.strip_prefix('/')?;
        if self.segments.is_empty() {
            return body.is_empty().then(Vec::new);
        }
        let mut rest = body;
        let mut values = Vec::new();
        for (index, segment) in self.segments.iter().enumerate() {
            if let Segment::Rest(name) = segment {
                let value = percent_decode_str(rest).decode_utf8().ok()?.into_owned();
                if value.is_empty() {
                    return None;
                }
                values.push((name.as_str(), value));
                return Some(values);
            }
            let (part, tail) = match rest.split_once('/') {
                Some((part, tail)) => (part, Some(tail)),
                None => (rest, None),
            };
            let last = index + 1 == self.segments.len();
            match segment {
                Segment::Literal(text) => {
                    if part != text {
                        return None;
                    }
                }
                Segment::Param(name, converter) => {
                    let value = percent_decode_str(part).decode_utf8().ok()?;
                    if !converter.accepts(&value) {
                        return None;
                    }
                    values.push((name.as_str(), value.into_owned()));
                }
                Segment::Rest(_) => unreachable!("handled above"),
            }
            match (last, tail) {
                (true, None) if !self.trailing_slash => return Some(values),
                (true, Some("")) if self.trailing_slash => return Some(values),
                (false, Some(tail)) => rest = tail,
                _ => return None,
            }
        }
        None
    }

    /// Builds a path, taking each parameter's value from `lookup`.
    ///
    /// # Errors
    ///
    /// [`PatternError::Missing`] or [`PatternError::Mismatch`].
    pub fn build<'a>(
        &self,
        lookup: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<String, PatternError> {
        let mut path = String::new();
        for segment in &self.segments {
            path.push('/');
            match segment {
                Segment::Literal(text) => path.push_str(text),
                Segment::Param(name, converter) => {
                    let value = lookup(name).ok_or_else(|| PatternError::Missing(name.clone()))?;
                    if !converter.accepts(value) {
                        return Err(PatternError::Mismatch {
                            param: name.clone(),
                            value: value.to_owned(),
                            converter: *converter,
                        });
                    }
                    path.push_str(&super::encode_segment(value));
                }
                Segment::Rest(name) => {
                    let value = lookup(name).ok_or_else(|| PatternError::Missing(name.clone()))?;
                    let encoded: Vec<String> = value
                        .trim_start_matches('/')
                        .split('/')
                        .map(super::encode_segment)
                        .collect();
                    path.push_str(&encoded.join("/"));
                }
            }
        }
        if self.trailing_slash && !matches!(self.segments.last(), Some(Segment::Rest(_))) {
            path.push('/');
        }
        if path.is_empty() {
            path.push('/');
        }
        Ok(path)
    }
}

fn valid_name(name: &str) -> Result<&str, String> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if valid {
        Ok(name)
    } else {
        Err(format!(
            "`{name}` is not a valid parameter name (letters, digits, `_`)"
        ))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_converters_and_builds_axum_paths() {
        let pattern = Pattern::parse("/polls/{id:int}/votes/{who}").unwrap();
        assert_eq!(pattern.axum_path(), "/polls/{id}/votes/{who}");
        assert_eq!(
            pattern.params().collect::<Vec<_>>(),
            vec![("id", Converter::Int), ("who", Converter::Str)]
        );
        assert_eq!(Pattern::parse("/").unwrap().axum_path(), "/");
        assert_eq!(
            Pattern::parse("/files/{*rest}").unwrap().axum_path(),
            "/files/{*rest}"
        );
    }

    #[test]
    fn rejects_malformed_patterns() {
        for bad in [
            "polls",
            "/{id:float}/",
            "/{}/",
            "/{a}/{a}/",
            "/x{id}/",
            "//",
            "/{*rest}/more",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn matches_respect_converters_and_slashes() {
        let pattern = Pattern::parse("/polls/{id:int}/").unwrap();
        assert!(pattern.matches("/polls/3/"));
        assert!(!pattern.matches("/polls/three/"));
        assert!(!pattern.matches("/polls/3"));
        assert!(!pattern.matches("/polls/3/x/"));
        let root = Pattern::parse("/").unwrap();
        assert!(root.matches("/"));
        assert!(!root.matches("/x"));
        let rest = Pattern::parse("/static/{*path}").unwrap();
        assert_eq!(
            rest.captures("/static/css/a%20b.css").unwrap(),
            vec![("path", "css/a b.css".to_owned())]
        );
    }

    #[test]
    fn build_checks_and_escapes_values() {
        let pattern = Pattern::parse("/u/{name}/{id:int}/").unwrap();
        let url = pattern
            .build(|p| Some(if p == "name" { "a b?c" } else { "7" }))
            .unwrap();
        assert_eq!(url, "/u/a%20b%3Fc/7/");
        // As Django's `str` converter, a value with `/` cannot fill one segment.
        assert!(
            pattern
                .build(|p| Some(if p == "name" { "a/b" } else { "7" }))
                .is_err()
        );
        let error = pattern
            .build(|p| Some(if p == "name" { "x" } else { "seven" }))
            .unwrap_err();
        assert!(matches!(error, PatternError::Mismatch { .. }));
        assert!(matches!(
            pattern.build(|_| None).unwrap_err(),
            PatternError::Missing(_)
        ));
    }

    #[test]
    fn join_handles_prefix_slashes() {
        assert_eq!(Pattern::join("/polls", "/").unwrap().to_string(), "/polls/");
        assert_eq!(
            Pattern::join("/polls/", "/{id}/").unwrap().to_string(),
            "/polls/{id}/"
        );
        assert_eq!(Pattern::join("/", "/").unwrap().to_string(), "/");
        assert_eq!(Pattern::join("", "/about").unwrap().to_string(), "/about");
    }

    #[test]
    fn shape_ignores_parameter_names() {
        let a = Pattern::parse("/p/{id}/").unwrap();
        let b = Pattern::parse("/p/{slug:slug}/").unwrap();
        assert_eq!(a.shape(), b.shape());
    }
}
