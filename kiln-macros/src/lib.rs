//! Procedural macros for Kiln. They generate calls into ordinary, documented
//! runtime code in the `kiln` crate; use them through `kiln` (`#[kiln::main]`).

use proc_macro::TokenStream;
use quote::quote;
use syn::{DeriveInput, ItemFn, ReturnType, parse_macro_input};

mod forms;

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
/// the project's management commands (`runserver`, `routes`, `check`).
///
/// ```ignore
/// #[kiln::main]
/// fn main() -> kiln::Project {
///     kiln::project!().route("/", "index", kiln::urls::get(|| async { "Hello" }))
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    if !args.is_empty() {
        return syn::Error::new(
            proc_macro2::Span::call_site(),
            "#[kiln::main] takes no arguments",
        )
        .to_compile_error()
        .into();
    }
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
    quote! {
        #(#attrs)*
        fn main() -> ::std::process::ExitCode {
            fn __kiln_project() #output #body
            ::kiln::cli::main(__kiln_project())
        }
    }
    .into()
}
