//! The filters Django users reach for, with Django's behaviour. Templates
//! call them with Jinja's syntax: `{{ value|truncatewords(30) }}` for
//! Django's `{{ value|truncatewords:30 }}`.

use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State};

use super::date::{DEFAULT_FORMAT, Moment};
use crate::http::escape;

/// Adds every filter of this module to `env`.
pub(crate) fn register(env: &mut Environment<'_>) {
    env.add_filter("date", date);
    env.add_filter("default", default);
    env.add_filter("default_if_none", default_if_none);
    env.add_filter("pluralize", pluralize);
    env.add_filter("truncatewords", truncatewords);
    env.add_filter("truncatechars", truncatechars);
    env.add_filter("linebreaksbr", linebreaksbr);
    env.add_filter("linebreaks", linebreaks);
    env.add_filter("json_script", json_script);
    env.add_filter("filesizeformat", filesizeformat);
    env.add_filter("yesno", yesno);
    env.add_filter("floatformat", floatformat);
    env.add_filter("slugify", slugify);
    env.add_filter("intcomma", intcomma);
}

/// The text of a value as Django's `str()` would give it.
fn text(value: &Value) -> String {
    if value.is_undefined() || value.is_none() {
        return if value.is_none() {
            "None".to_owned()
        } else {
            String::new()
        };
    }
    value.to_string()
}

/// `value` escaped for HTML unless it is already safe or autoescaping is off.
fn escaped(state: &State<'_, '_>, value: &Value) -> String {
    let text = text(value);
    if value.is_safe() || matches!(state.auto_escape(), AutoEscape::None) {
        text
    } else {
        escape(&text)
    }
}

/// `date(format="N j, Y")`: Django's date format characters, or strftime
/// when the format contains `%`. An empty value gives an empty string.
fn date(value: Value, format: Option<&str>) -> Result<String, Error> {
    if value.is_undefined() || value.is_none() || value.as_str() == Some("") {
        return Ok(String::new());
    }
    let moment = Moment::parse(&value).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "date: cannot read {value:?} as a date (expected ISO 8601 text such as 2026-11-26T09:05:00Z, or a Unix timestamp)"
            ),
        )
    })?;
    Ok(moment.format(format.unwrap_or(DEFAULT_FORMAT)))
}

/// `default(other)`: `other` when the value is false, empty, none or undefined (Django's `default`).
fn default(value: Value, other: Value) -> Value {
    if value.is_undefined() || !value.is_true() {
        other
    } else {
        value
    }
}

/// `default_if_none(other)`: `other` only when the value is none (or undefined).
fn default_if_none(value: Value, other: Value) -> Value {
    if value.is_undefined() || value.is_none() {
        other
    } else {
        value
    }
}

/// How many things a value counts: a number, or the length of a sequence.
fn count(value: &Value) -> Option<f64> {
    match value.kind() {
        ValueKind::Number | ValueKind::Bool => f64::try_from(value.clone()).ok(),
        ValueKind::String => value.as_str().and_then(|s| s.trim().parse().ok()),
        _ => value.len().map(|n| n as f64),
    }
}

/// `pluralize(suffix="s")`: `"s"` unless the value is 1; `pluralize("es")`,
/// `pluralize("y,ies")`.
fn pluralize(value: Value, suffix: Option<&str>) -> String {
    let suffix = suffix.unwrap_or("s");
    let (singular, plural) = match suffix.split_once(',') {
        Some((_, rest)) if rest.contains(',') => return String::new(),
        Some((singular, plural)) => (singular, plural),
        None => ("", suffix),
    };
    match count(&value) {
        Some(1.0) => singular.to_owned(),
        Some(_) => plural.to_owned(),
        None => String::new(),
    }
}

/// `truncatewords(n)`: the first `n` words, then ` …` if there were more.
fn truncatewords(value: Value, n: usize) -> String {
    let text = text(&value);
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= n {
        return words.join(" ");
    }
    let mut out = words[..n].join(" ");
    out.push_str(" …");
    out
}

/// `truncatechars(n)`: at most `n` characters, the last one `…` when cut.
fn truncatechars(value: Value, n: usize) -> String {
    let text = text(&value);
    if text.chars().count() <= n {
        return text;
    }
    if n == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(n - 1).collect();
    out.push('…');
    out
}

fn normalize_newlines(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// `linebreaksbr`: newlines become `<br>`; the text is escaped first.
fn linebreaksbr(state: &State<'_, '_>, value: Value) -> Value {
    let text = normalize_newlines(&escaped(state, &value));
    Value::from_safe_string(text.replace('\n', "<br>"))
}

/// `linebreaks`: blank-line separated paragraphs in `<p>`, single newlines `<br>`.
fn linebreaks(state: &State<'_, '_>, value: Value) -> Value {
    let text = normalize_newlines(&escaped(state, &value));
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    let mut blank_run = false;
    for line in text.split('\n') {
        if line.is_empty() {
            blank_run = true;
            continue;
        }
        if blank_run && !current.is_empty() {
            paragraphs.push(std::mem::take(&mut current));
        }
        blank_run = false;
        if !current.is_empty() {
            current.push_str("<br>");
        }
        current.push_str(line);
    }
    if !current.is_empty() || paragraphs.is_empty() {
        paragraphs.push(current);
    }
    let html: Vec<String> = paragraphs.iter().map(|p| format!("<p>{p}</p>")).collect();
    Value::from_safe_string(html.join("\n\n"))
}

/// `json_script(id)`: the value as JSON in a `<script type="application/json">`,
/// with `<`, `>` and `&` escaped so the JSON cannot close the element.
fn json_script(value: Value, id: Option<&str>) -> Result<Value, Error> {
    let json = serde_json::to_string(&value).map_err(|error| {
        Error::new(ErrorKind::BadSerialization, format!("json_script: {error}"))
    })?;
    let json = json
        .replace('<', "\\u003C")
        .replace('>', "\\u003E")
        .replace('&', "\\u0026");
    let html = match id {
        Some(id) => format!(
            "<script id=\"{}\" type=\"application/json\">{json}</script>",
            escape(id)
        ),
        None => format!("<script type=\"application/json\">{json}</script>"),
    };
    Ok(Value::from_safe_string(html))
}

/// `filesizeformat`: `"117.7\u{a0}MB"`, `"1\u{a0}byte"` (binary multiples, as Django).
fn filesizeformat(value: Value) -> String {
    let bytes = count(&value).unwrap_or(0.0);
    let (sign, bytes) = if bytes < 0.0 {
        ("-", -bytes)
    } else {
        ("", bytes)
    };
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    let text = if bytes < 1024.0 {
        let n = bytes as u64;
        format!("{n}\u{a0}{}", if n == 1 { "byte" } else { "bytes" })
    } else {
        let mut size = bytes / 1024.0;
        let mut unit = 0;
        while size >= 1024.0 && unit < UNITS.len() - 1 {
            size /= 1024.0;
            unit += 1;
        }
        format!("{}\u{a0}{}", round_decimal(size, 1), UNITS[unit])
    };
    format!("{sign}{text}")
}

/// `yesno("yes,no,maybe")`: one word for true, false and none.
fn yesno(value: Value, words: Option<&str>) -> Value {
    let words: Vec<&str> = words.unwrap_or("yes,no,maybe").split(',').collect();
    if words.len() < 2 {
        return value;
    }
    let word = if value.is_none() || value.is_undefined() {
        words.get(2).copied().unwrap_or(words[1])
    } else if value.is_true() {
        words[0]
    } else {
        words[1]
    };
    Value::from(word)
}

/// `x` rounded half away from zero to `places` decimals, from its shortest
/// decimal text (so `34.265` rounds to `34.27`, as Django's Decimal does).
fn round_decimal(x: f64, places: usize) -> String {
    let text = format!("{}", x.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let int_len = int.len();
    let keep = int_len + places;
    digits.resize(digits.len().max(keep + 1), 0);
    let round_up = digits[keep] >= 5;
    digits.truncate(keep);
    if round_up {
        let mut i = keep;
        loop {
            if i == 0 {
                digits.insert(0, 1);
                break;
            }
            i -= 1;
            if digits[i] == 9 {
                digits[i] = 0;
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let int_len = digits.len() - places;
    let as_text = |slice: &[u8]| {
        slice
            .iter()
            .map(|d| char::from(b'0' + d))
            .collect::<String>()
    };
    let mut out = as_text(&digits[..int_len]);
    if out.is_empty() {
        out.push('0');
    }
    if places > 0 {
        out.push('.');
        out.push_str(&as_text(&digits[int_len..]));
    }
    let is_zero = digits.iter().all(|d| *d == 0);
    if x.is_sign_negative() && !is_zero {
        out.insert(0, '-');
    }
    out
}

/// `1234567` → `1,234,567` (the integer part of `number`, which may have a sign and decimals).
fn group_thousands(number: &str) -> String {
    let (sign, rest) = match number.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", number),
    };
    let (int, frac) = match rest.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (rest, None),
    };
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(frac) => format!("{sign}{grouped}.{frac}"),
        None => format!("{sign}{grouped}"),
    }
}

/// `floatformat(-1)`: Django's rules. `n` decimals always; `-n` decimals
/// only when the number is not whole; a `g` suffix (`"2g"`) groups thousands.
/// A value that is not a number gives an empty string.
fn floatformat(value: Value, places: Option<Value>) -> String {
    let x = match value.kind() {
        ValueKind::Number => f64::try_from(value.clone()).ok(),
        _ => text(&value).trim().parse::<f64>().ok(),
    };
    let Some(x) = x.filter(|x| x.is_finite()) else {
        return String::new();
    };
    let arg = places
        .map(|p| p.to_string())
        .unwrap_or_else(|| "-1".to_owned());
    let group = arg.contains('g');
    let digits: String = arg.chars().filter(|c| *c != 'g' && *c != 'u').collect();
    let places: i64 = if digits.is_empty() {
        -1
    } else {
        digits.parse().unwrap_or(-1)
    };
    let whole = x.fract() == 0.0;
    // Django looks at the value itself: 34.0001 with -1 is "34.0", not "34".
    let text = if places < 0 && whole {
        round_decimal(x, 0)
    } else {
        round_decimal(x, places.unsigned_abs() as usize)
    };
    if group { group_thousands(&text) } else { text }
}

/// `slugify`: lowercase ASCII letters, digits, `_` and `-`; spaces and
/// hyphens become one `-`. Common accented Latin letters lose their accent
/// (`é` → `e`); other non-ASCII characters are dropped (there is no full
/// Unicode normalisation).
fn slugify(value: Value) -> String {
    let mut folded = String::new();
    for c in text(&value).chars() {
        match fold_accent(c) {
            Some(ascii) => folded.push_str(ascii),
            None if c.is_ascii() => folded.push(c.to_ascii_lowercase()),
            None => {}
        }
    }
    let kept: String = folded
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || c.is_whitespace())
        .collect();
    let mut slug = String::with_capacity(kept.len());
    let mut pending_dash = false;
    for c in kept.trim().chars() {
        if c == '-' || c.is_whitespace() {
            pending_dash = true;
        } else {
            if pending_dash && !slug.is_empty() {
                slug.push('-');
            }
            pending_dash = false;
            slug.push(c);
        }
    }
    slug.trim_matches(['-', '_']).to_owned()
}

fn fold_accent(c: char) -> Option<&'static str> {
    Some(match c.to_lowercase().next().unwrap_or(c) {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ą' => "a",
        'ç' | 'ć' | 'č' => "c",
        'ď' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ł' => "l",
        'ñ' | 'ń' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
        'ř' => "r",
        'ś' | 'š' => "s",
        'ť' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' => "u",
        'ý' | 'ÿ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        'ß' => "ss",
        'æ' => "ae",
        'œ' => "oe",
        _ => return None,
    })
}

/// `intcomma`: `45000` → `45,000`, `1234.5` → `1,234.5`. Text that is not
/// a number is returned unchanged.
fn intcomma(value: Value) -> Value {
    let text = text(&value);
    let number = text.trim();
    let is_number = !number.is_empty()
        && number.trim_start_matches('-').split_once('.').map_or(
            number
                .trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit()),
            |(int, frac)| {
                !int.is_empty()
                    && int.bytes().all(|b| b.is_ascii_digit())
                    && frac.bytes().all(|b| b.is_ascii_digit())
            },
        );
    if is_number {
        Value::from(group_thousands(number))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use minijinja::{Environment, context};

    fn render(template: &str, ctx: minijinja::Value) -> String {
        let mut env = Environment::new();
        env.set_formatter(super::super::formatter);
        super::register(&mut env);
        env.add_template("t.html", template).unwrap();
        env.get_template("t.html").unwrap().render(ctx).unwrap()
    }

    fn one(template: &str) -> String {
        render(template, context! {})
    }

    #[test]
    fn date_formats_like_django_or_strftime() {
        let ctx = context! { when => "2026-11-03T09:05:07Z" };
        assert_eq!(render("{{ when|date }}", ctx.clone()), "Nov. 3, 2026");
        assert_eq!(
            render("{{ when|date('d/m/Y H:i') }}", ctx.clone()),
            "03/11/2026 09:05"
        );
        assert_eq!(render("{{ when|date('%Y') }}", ctx), "2026");
        assert_eq!(one("[{{ none|date }}]"), "[]");
        let mut env = Environment::new();
        super::register(&mut env);
        let error = env
            .render_str("{{ 'soon'|date }}", context! {})
            .unwrap_err();
        assert!(error.to_string().contains("cannot read"), "{error}");
    }

    #[test]
    fn default_replaces_falsy_values_and_default_if_none_only_none() {
        assert_eq!(
            one(
                "{{ ''|default('x') }} {{ 0|default('x') }} {{ missing|default('x') }} {{ 'a'|default('x') }}"
            ),
            "x x x a"
        );
        assert_eq!(
            one(
                "{{ none|default_if_none('x') }} [{{ ''|default_if_none('x') }}] {{ 0|default_if_none('x') }}"
            ),
            "x [] 0"
        );
    }

    #[test]
    fn pluralize_counts_numbers_and_sequences() {
        assert_eq!(
            one("vote{{ 1|pluralize }} vote{{ 2|pluralize }} vote{{ 0|pluralize }}"),
            "vote votes votes"
        );
        assert_eq!(
            one(
                "walrus{{ 2|pluralize('es') }} cherr{{ 1|pluralize('y,ies') }} cherr{{ [1,2]|pluralize('y,ies') }}"
            ),
            "walruses cherry cherries"
        );
        assert_eq!(one("[{{ 2|pluralize('a,b,c') }}]"), "[]");
    }

    #[test]
    fn truncation_by_words_and_characters() {
        assert_eq!(one("{{ 'Joel is a slug'|truncatewords(2) }}"), "Joel is …");
        assert_eq!(
            one("{{ 'Joel is a slug'|truncatewords(4) }}"),
            "Joel is a slug"
        );
        assert_eq!(one("{{ 'Joel is a slug'|truncatechars(7) }}"), "Joel i…");
        assert_eq!(one("{{ 'Joel'|truncatechars(7) }}"), "Joel");
    }

    #[test]
    fn linebreaks_escape_first_and_mark_safe() {
        let ctx = context! { text => "a <b>\nc\n\nd" };
        assert_eq!(
            render("{{ text|linebreaksbr }}", ctx.clone()),
            "a &lt;b&gt;<br>c<br><br>d"
        );
        assert_eq!(
            render("{{ text|linebreaks }}", ctx.clone()),
            "<p>a &lt;b&gt;<br>c</p>\n\n<p>d</p>"
        );
        let mut env = Environment::new();
        super::register(&mut env);
        // No autoescaping for .txt: the text is kept as it is.
        env.add_template("t.txt", "{{ text|linebreaksbr }}")
            .unwrap();
        assert_eq!(
            env.get_template("t.txt").unwrap().render(ctx).unwrap(),
            "a <b><br>c<br><br>d"
        );
    }

    #[test]
    fn json_script_cannot_close_its_element() {
        let ctx = context! { data => context! { html => "</script><b>&" } };
        assert_eq!(
            render("{{ data|json_script('d') }}", ctx),
            r#"<script id="d" type="application/json">{"html":"\u003C/script\u003E\u003Cb\u003E\u0026"}</script>"#
        );
    }

    #[test]
    fn filesizes_in_binary_multiples() {
        assert_eq!(
            one(
                "{{ 1|filesizeformat }}|{{ 1023|filesizeformat }}|{{ 123456789|filesizeformat }}|{{ -2048|filesizeformat }}"
            ),
            "1\u{a0}byte|1023\u{a0}bytes|117.7\u{a0}MB|-2.0\u{a0}KB"
        );
    }

    #[test]
    fn yesno_maps_true_false_and_none() {
        assert_eq!(
            one(
                "{{ true|yesno }} {{ false|yesno }} {{ none|yesno }} {{ none|yesno('y,n') }} {{ true|yesno('on,off') }}"
            ),
            "yes no maybe n on"
        );
    }

    #[test]
    fn floatformat_follows_djangos_rules() {
        assert_eq!(
            one("{{ 34.23234|floatformat }} {{ 34.0|floatformat }} {{ 34.26|floatformat }}"),
            "34.2 34 34.3"
        );
        assert_eq!(
            one(
                "{{ 34.23234|floatformat(3) }} {{ 34|floatformat(3) }} {{ 34.265|floatformat(2) }}"
            ),
            "34.232 34.000 34.27"
        );
        assert_eq!(
            one("{{ 34.0|floatformat(-3) }} {{ 34.26|floatformat(-3) }} {{ 2.5|floatformat(0) }}"),
            "34 34.260 3"
        );
        assert_eq!(
            one(
                "{{ 1234.5|floatformat('2g') }} [{{ 'x'|floatformat }}] {{ -0.01|floatformat(1) }}"
            ),
            "1,234.50 [] 0.0"
        );
    }

    #[test]
    fn slugify_and_intcomma() {
        assert_eq!(
            one("{{ ' Joel is a slug '|slugify }} {{ 'Café -- Crème!'|slugify }}"),
            "joel-is-a-slug cafe-creme"
        );
        assert_eq!(
            one(
                "{{ 45000|intcomma }} {{ 1234567.25|intcomma }} {{ '-1000'|intcomma }} {{ 'x'|intcomma }} {{ 100|intcomma }}"
            ),
            "45,000 1,234,567.25 -1,000 x 100"
        );
    }
}
