//! Procedural macros for Kiln. They generate calls into ordinary, documented
//! runtime code in the `kiln` crate; use them through `kiln` (`#[kiln::main]`).

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, ItemFn, ReturnType, parse_macro_input};

mod forms;
mod template;

/// Implements `kiln::forms::FormData` for a struct with named fields: each
/// field is a form field whose type gives its kind (`kiln::forms::FormValue`).
///
/// Field attributes, in `#[form(...)]`: `label = "..."`, `help_text = "..."`,
/// `max_length = N`, `min_length = N`, `min = N`, `max = N`, `regex = "..."`,
/// `validate = path::to_fn` (a `fn(&T) -> Result<(), ValidationError>`, may
/// repeat), `widget = "text" | "textarea" | "password" | "hidden"`,
/// `initial = value` (anything `ToString`). Struct attribute:
/// `#[form(clean = path::to_fn)]` (a `fn(&Self) -> Result<(), ValidationError>`).
/// See `kiln::forms` for the behaviour.
#[proc_macro_derive(Form, attributes(form))]
pub fn derive_form(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    forms::derive_form(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Implements `kiln::forms::Choices` and `kiln::forms::FormValue` for an enum
/// of unit variants: a form field of that type is a `<select>` of them.
/// Each variant's value defaults to its name in snake case and its label to
/// its name in words; `#[choice(value = "...", label = "...")]` sets them.
#[proc_macro_derive(Choices, attributes(choice))]
pub fn derive_choices(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    forms::derive_choices(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Turns `fn main() -> Project { ... }` into a program whose command line is
/// the project's management commands (`runserver`, `routes`, `check`), and
/// installs `kiln::allocator::Allocator` (mimalloc) as its global allocator;
/// `#[kiln::main(global_allocator = false)]` leaves the allocator to the
/// program.
///
/// ```ignore
/// #[kiln::main]
/// fn main() -> kiln::Project {
///     kiln::project!().route("/", "index", kiln::urls::get(|| async { "Hello" }))
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let install_allocator = match main_args(args.into()) {
        Ok(install) => install,
        Err(error) => return error.to_compile_error().into(),
    };
    let function = parse_macro_input!(item as ItemFn);
    if function.sig.asyncness.is_some() {
        return syn::Error::new_spanned(
            function.sig.asyncness,
            "#[kiln::main] builds the async runtime itself: make `main` a plain `fn` that returns the Project",
        )
        .to_compile_error()
        .into();
    }
    if matches!(function.sig.output, ReturnType::Default) {
        return syn::Error::new_spanned(
            &function.sig,
            "#[kiln::main] expects `fn main() -> kiln::Project`",
        )
        .to_compile_error()
        .into();
    }
    let body = &function.block;
    let output = &function.sig.output;
    let attrs = &function.attrs;
    let allocator = install_allocator.then(|| {
        quote! {
            #[global_allocator]
            static KILN_GLOBAL_ALLOCATOR: ::kiln::allocator::Allocator = ::kiln::allocator::Allocator;
        }
    });
    quote! {
        #allocator

        #(#attrs)*
        fn main() -> ::std::process::ExitCode {
            fn __kiln_project() #output #body
            ::kiln::cli::main(__kiln_project())
        }
    }
    .into()
}

/// `#[kiln::main]`'s one argument, `global_allocator = true | false`:
/// whether to install Kiln's allocator (the default).
fn main_args(args: proc_macro2::TokenStream) -> syn::Result<bool> {
    const USAGE: &str = "#[kiln::main] takes one optional argument: `global_allocator = false` keeps the program's own allocator";
    if args.is_empty() {
        return Ok(true);
    }
    let arg: syn::MetaNameValue =
        syn::parse2(args).map_err(|error| syn::Error::new(error.span(), USAGE))?;
    match &arg.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Bool(value),
            ..
        }) if arg.path.is_ident("global_allocator") => Ok(value.value),
        _ => Err(syn::Error::new_spanned(&arg, USAGE)),
    }
}

/// A compiled template (Kiln's `compiled-templates` feature): askama's
/// `#[derive(Template)]` and `#[template(...)]`, with Kiln's crate path, on
/// a struct whose fields are the template's context; the struct becomes a
/// value a handler can return (a 200 response with the content type of the
/// template's extension, or a 500 `kiln::Error` naming the template).
///
/// The arguments are askama's: `path = "fortunes.html"` (under the crate's
/// `templates/` folder), or `source = "..."` with `ext = "html"`; `escape`,
/// `syntax`, `block`, `whitespace`, `config`. See `kiln::templates::compiled`.
///
/// ```ignore
/// #[kiln::template(path = "fortunes.html")]
/// struct FortunesPage {
///     fortunes: Vec<Fortune>,
/// }
///
/// async fn fortunes(db: Db) -> Result<FortunesPage, kiln::Error> { ... }
/// ```
#[proc_macro_attribute]
pub fn template(args: TokenStream, item: TokenStream) -> TokenStream {
    let input = parse_macro_input!(item as DeriveInput);
    template::template(args.into(), &input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The files under a folder of the calling crate, embedded: expands to
/// `&[("relative/name.html", include_str!("/abs/folder/relative/name.html")), ...]`,
/// sorted by name. `kiln::templates_dir!` and `kiln::embed_templates!` call
/// it; the path is relative to the calling crate's `Cargo.toml`.
///
/// Hidden files (`.name`) and editor backups (`name~`) are left out. Each
/// file is included with `include_str!`, so cargo rebuilds the crate when one
/// changes; a file *added* to the folder is only picked up by the next build
/// that recompiles the crate (stable Rust cannot track a folder).
#[doc(hidden)]
#[proc_macro]
pub fn embed_dir(input: TokenStream) -> TokenStream {
    let path = parse_macro_input!(input as syn::LitStr);
    match embedded_files(&path.value()) {
        Ok(files) => {
            let names = files.iter().map(|(name, _)| name);
            let paths = files.iter().map(|(_, path)| path);
            quote! { &[ #( (#names, ::core::include_str!(#paths)) ),* ] }.into()
        }
        Err(message) => syn::Error::new(path.span(), message)
            .to_compile_error()
            .into(),
    }
}

/// `(name relative to the folder with `/` separators, absolute path)` of
/// every file under `relative` in the calling crate, sorted by name.
fn embedded_files(relative: &str) -> Result<Vec<(String, String)>, String> {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
        .map_err(|_| "CARGO_MANIFEST_DIR is not set: build the crate with cargo".to_owned())?;
    let root = std::path::Path::new(&manifest_dir).join(relative);
    if !root.is_dir() {
        return Err(format!(
            "the templates folder `{}` does not exist\n  fix: create it, or correct the path (it is relative to the crate's Cargo.toml)",
            root.display()
        ));
    }
    let mut files = Vec::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|error| format!("cannot read `{}`: {error}", dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|error| format!("cannot read `{}`: {error}", dir.display()))?
                .path();
            let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if file_name.starts_with('.') || file_name.ends_with('~') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let name = path
                .strip_prefix(&root)
                .map_err(|_| format!("`{}` is outside the folder", path.display()))?
                .components()
                .map(|part| part.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let absolute = path
                .to_str()
                .ok_or_else(|| format!("`{}` is not a UTF-8 path", path.display()))?
                .to_owned();
            files.push((name, absolute));
        }
    }
    files.sort();
    Ok(files)
}
