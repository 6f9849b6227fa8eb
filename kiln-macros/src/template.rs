//! `#[kiln::template(...)]`: askama's derive with Kiln's crate path, and the
//! impls that make the template a response; the behaviour lives in
//! `kiln::templates::compiled`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::punctuated::Punctuated;
use syn::{DeriveInput, Expr, ExprLit, Lit, Meta, Token};

pub(crate) fn template(args: TokenStream, input: &DeriveInput) -> syn::Result<TokenStream> {
    let metas = syn::parse::Parser::parse2(Punctuated::<Meta, Token![,]>::parse_terminated, args)?;
    let mut path = None;
    let mut ext = None;
    for meta in &metas {
        let Meta::NameValue(pair) = meta else {
            continue;
        };
        if pair.path.is_ident("askama") {
            return Err(syn::Error::new_spanned(
                pair,
                "#[kiln::template] names askama's crate itself (`kiln::deps::askama`); fix: remove `askama = ...`",
            ));
        }
        let text = match &pair.value {
            Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) => Some(text.value()),
            _ => None,
        };
        if pair.path.is_ident("path") {
            path = text;
        } else if pair.path.is_ident("ext") {
            ext = text;
        }
    }
    // The name gives the content type by its extension and names the
    // template in errors; askama itself reports a missing source.
    let name = match (path, ext) {
        (Some(path), _) => path,
        (None, Some(ext)) => format!("inline.{ext}"),
        (None, None) => {
            return Err(syn::Error::new(
                proc_macro2::Span::call_site(),
                "#[kiln::template] needs the template: `path = \"fortunes.html\"` (a file under templates/), or `source = \"...\"` with `ext = \"html\"`",
            ));
        }
    };
    let metas = metas.iter();
    let ident = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #[derive(::kiln::deps::askama::Template)]
        #[template(#(#metas,)* askama = ::kiln::deps::askama)]
        #input

        impl #impl_generics ::kiln::templates::compiled::CompiledTemplate for #ident #type_generics #where_clause {
            const NAME: &'static str = #name;
        }

        impl #impl_generics ::kiln::deps::axum::response::IntoResponse for #ident #type_generics #where_clause {
            fn into_response(self) -> ::kiln::deps::axum::response::Response {
                ::kiln::deps::axum::response::IntoResponse::into_response(
                    ::kiln::templates::compiled::response(&self),
                )
            }
        }
    })
}
