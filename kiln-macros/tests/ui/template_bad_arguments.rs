use kiln_macros::template;

#[template(escape = "none")]
struct Page {
    title: String,
}

#[template(path = "page.html", askama = askama)]
struct Other {
    title: String,
}

fn main() {}
