//! The composer's sticker picker: a disclosure with a grid of the default stickers; a click
//! posts one (with the composer's nonce, as htmx includes the enclosing form's fields).

use maud::{Markup, html};

use super::{content::sticker_url, ids};
use crate::{
    domain::DEFAULT_STICKERS,
    i18n::{Lang, Msg},
};

pub fn sticker_picker(lang: Lang, conversation_id: i64) -> Markup {
    let action = format!("/conversations/{conversation_id}/stickers");
    let target = format!("#{}", ids::thread(conversation_id));
    html! {
        details.sticker-picker {
            summary { (lang.t(Msg::Stickers)) }
            div.sticker-grid {
                @for (package, sticker) in DEFAULT_STICKERS {
                    @let vals = serde_json::json!({ "package_id": package, "sticker_id": sticker });
                    button.sticker-choice type="button" hx-post=(action) hx-target=(target)
                        hx-swap="beforeend" hx-vals=(vals.to_string())
                        title=(lang.t(Msg::SendSticker)) aria-label=(lang.t(Msg::SendSticker))
                        data-package=(package) data-sticker=(sticker) {
                        img src=(sticker_url(sticker)) alt="" loading="lazy";
                    }
                }
            }
        }
    }
}
