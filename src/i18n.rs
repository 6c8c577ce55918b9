//! The string catalogue: every word the desk shows, in English and Traditional Chinese (zh-TW).
//!
//! Templates never hold literal text; they call `lang.t(Msg::…)`. A new string is a new `Msg`
//! variant, and the `match` in `t` will not compile until both languages have it.
//! The language comes from `Accept-Language` (the `Lang` extractor); an agent's own choice
//! (`agents.language`, set from the header's menu) overrides it.

use std::convert::Infallible;

use axum::{extract::FromRequestParts, http::request::Parts};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lang {
    #[default]
    En,
    ZhTw,
}

/// Every user-visible string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    AppName,
    SignIn,
    SignOut,
    Username,
    Password,
    BadCredentials,
    TooManyAttempts,
    SetupTitle,
    SetupIntro,
    SetupCreate,
    SetupGone,
    Conversations,
    NoConversations,
    PickConversation,
    Send,
    ComposerPlaceholder,
    ComposerHint,
    ReplyEmpty,
    ReplyTooLong,
    Queued,
    Sending,
    Sent,
    Failed,
    Retry,
    Unsent,
    Sticker,
    Image,
    Video,
    Audio,
    File,
    Location,
    Postback,
    Followed,
    Unfollowed,
    BotJoined,
    BotLeft,
    MemberJoined,
    MemberLeft,
    OtherKind,
    LiveOffline,
    SandboxBanner,
    SandboxOpen,
    SimTitle,
    SimIntro,
    SimCustomers,
    SimNoCustomers,
    SimDisplayName,
    SimAddCustomer,
    SimPickCustomer,
    SimPlaceholder,
    SimSendPhoto,
    SimFollow,
    SimNothingYet,
    SimBadName,
    SimAccount,
    // --- working together: list filters, assignment, status, unread, contact panel
    FilterWho,
    FilterAll,
    FilterMine,
    FilterUnassigned,
    FilterStatus,
    FilterAnyStatus,
    SearchLabel,
    SearchPlaceholder,
    NoMatches,
    StatusOpen,
    StatusPending,
    StatusResolved,
    StatusLabel,
    AssigneeLabel,
    Unassigned,
    AssignToMe,
    UnreadTitle,
    NotifyOn,
    NotifyOff,
    NotifyNewConversation,
    Back,
    Contact,
    ContactPicture,
    ContactLineId,
    ContactLanguage,
    ContactFollow,
    FollowUnknown,
    FollowFollowing,
    FollowUnfollowed,
    FollowJoined,
    FollowLeft,
    FirstSeen,
    LastSeen,
    // --- error answers
    ErrBadRequest,
    ErrSignedOut,
    ErrForbidden,
    ErrNotFound,
    ErrTimeout,
    ErrTooLarge,
    ErrTooMany,
    ErrUnavailable,
    ErrServer,
    ErrBackToInbox,
    ErrNetwork,
    // --- message kinds in the thread, older history, stickers
    StickerAlt,
    ImageAlt,
    GroupMember,
    MediaDownloading,
    MediaFailed,
    MediaExternal,
    MediaExternalNoLink,
    OpenMap,
    LoadingOlder,
    Stickers,
    SendSticker,
    // --- admin page, settings, per-agent language
    AdminLink,
    AdminTitle,
    AdminAgents,
    AdminAddAgent,
    DisplayName,
    Role,
    RoleAgent,
    RoleAdmin,
    AgentState,
    AgentActive,
    AgentInactive,
    Deactivate,
    Reactivate,
    ChangeRole,
    ResetPassword,
    NewPassword,
    PasswordRule,
    UsernameRule,
    You,
    AgentAdded,
    PasswordWasReset,
    AgentUpdated,
    ErrUsernameRule,
    ErrUsernameTaken,
    ErrDisplayNameRule,
    ErrPasswordShort,
    ErrPasswordLong,
    ErrBadRole,
    ErrLastAdmin,
    ErrNotYourself,
    ErrNoSuchAgent,
    SettingsTitle,
    WelcomeMessage,
    WelcomeHint,
    MarkAsReadSwitch,
    LoadingSwitch,
    WebhookUrl,
    WebhookUrlHint,
    Copy,
    Copied,
    Save,
    SettingsSaved,
    ErrWelcomeTooLong,
    Language,
    LangBrowser,
    LangEnglish,
    LangChinese,
    Apply,
    ConfirmDeactivate,
}

impl Lang {
    /// The first supported language in an `Accept-Language` value, honouring q-weights;
    /// English when none matches. Any `zh` other than simplified (`zh-CN`, `zh-SG`,
    /// `zh-Hans`) maps to zh-TW, the only Chinese we carry.
    pub fn from_accept_language(header: &str) -> Self {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse().ok()))
                .unwrap_or(1.0_f32);
            let lang = if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else if (tag == "zh" || tag.starts_with("zh-"))
                && !["zh-cn", "zh-sg", "zh-hans"]
                    .iter()
                    .any(|s| tag.starts_with(s))
            {
                Lang::ZhTw
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or_default()
    }

    /// The value stored in `agents.language` (and sent by the language menu).
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhTw => "zh-TW",
        }
    }

    /// The inverse of `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "en" => Some(Lang::En),
            "zh-TW" => Some(Lang::ZhTw),
            _ => None,
        }
    }

    /// The language of a request: the signed-in agent's own choice when the request carries
    /// one (`Chosen`, put there by `http::auth::agent_language`), else `Accept-Language`.
    pub fn of_request(
        extensions: &axum::http::Extensions,
        headers: &axum::http::HeaderMap,
    ) -> Self {
        if let Some(Chosen(lang)) = extensions.get::<Chosen>() {
            return *lang;
        }
        headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(Lang::from_accept_language)
            .unwrap_or_default()
    }

    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhTw => "zh-Hant-TW",
        }
    }

    pub fn t(self, msg: Msg) -> &'static str {
        use Msg::*;
        let (en, zh) = match msg {
            AppName => ("linechat", "linechat"),
            SignIn => ("Sign in", "登入"),
            SignOut => ("Sign out", "登出"),
            Username => ("Username", "帳號"),
            Password => ("Password", "密碼"),
            BadCredentials => ("Wrong username or password.", "帳號或密碼錯誤。"),
            TooManyAttempts => (
                "Too many failed attempts. Try again in 15 minutes.",
                "嘗試次數過多，請 15 分鐘後再試。",
            ),
            SetupTitle => ("Create the first admin", "建立第一位管理員"),
            SetupIntro => (
                "No agent exists yet. Choose the administrator's username and password (at least 8 characters).",
                "目前還沒有任何客服人員。請設定管理員的帳號與密碼（至少 8 個字元）。",
            ),
            SetupCreate => ("Create admin", "建立管理員"),
            SetupGone => (
                "This setup link has already been used.",
                "此設定連結已使用過。",
            ),
            Conversations => ("Conversations", "對話"),
            NoConversations => ("No conversations yet.", "目前沒有對話。"),
            PickConversation => ("Pick a conversation on the left.", "請從左側選擇一個對話。"),
            Send => ("Send", "送出"),
            ComposerPlaceholder => (
                "Write a reply… (Enter sends, Shift+Enter for a new line)",
                "輸入回覆…（Enter 送出，Shift+Enter 換行）",
            ),
            ComposerHint => ("characters left", "剩餘字數"),
            ReplyEmpty => ("Write something first.", "請先輸入訊息。"),
            ReplyTooLong => (
                "The message is longer than LINE's 5,000-character limit.",
                "訊息超過 LINE 的 5,000 字上限。",
            ),
            Queued => ("queued", "排隊中"),
            Sending => ("sending", "傳送中"),
            Sent => ("sent ✓", "已送出 ✓"),
            Failed => ("failed", "傳送失敗"),
            Retry => ("Retry", "重試"),
            Unsent => ("(message unsent)", "（訊息已收回）"),
            Sticker => ("[sticker]", "［貼圖］"),
            Image => ("[image]", "［圖片］"),
            Video => ("[video]", "［影片］"),
            Audio => ("[audio]", "［語音］"),
            File => ("[file]", "［檔案］"),
            Location => ("[location]", "［位置］"),
            Postback => ("[button tapped]", "［點選按鈕］"),
            Followed => ("added the account as a friend", "加入好友"),
            Unfollowed => ("blocked the account", "封鎖了帳號"),
            BotJoined => ("the account joined the chat", "帳號加入了聊天"),
            BotLeft => ("the account left the chat", "帳號離開了聊天"),
            MemberJoined => ("a member joined", "有成員加入"),
            MemberLeft => ("a member left", "有成員離開"),
            OtherKind => ("[unsupported message]", "［不支援的訊息］"),
            LiveOffline => ("Reconnecting…", "重新連線中…"),
            SandboxBanner => (
                "Sandbox — no LINE channel connected; messages go to a simulated LINE.",
                "沙盒模式：尚未連接 LINE 頻道，訊息會送到模擬的 LINE。",
            ),
            SandboxOpen => ("Open the customer simulator", "開啟顧客模擬器"),
            SimTitle => ("Customer simulator", "顧客模擬器"),
            SimIntro => (
                "Act as a LINE user: your messages reach the desk through real signed webhooks, and the agents' replies show up here.",
                "扮演 LINE 使用者：你的訊息會透過真正簽章的 webhook 送到客服台，客服的回覆會顯示在這裡。",
            ),
            SimCustomers => ("Simulated customers", "模擬顧客"),
            SimNoCustomers => ("No simulated customer yet.", "尚未建立模擬顧客。"),
            SimDisplayName => ("Display name", "顯示名稱"),
            SimAddCustomer => ("Add customer", "新增顧客"),
            SimPickCustomer => (
                "Pick a customer on the left, or add one.",
                "請從左側選擇一位顧客，或新增一位。",
            ),
            SimPlaceholder => ("Write as the customer…", "以顧客身分輸入訊息…"),
            SimSendPhoto => ("Send a photo", "傳送照片"),
            SimFollow => ("Add friend (follow)", "加入好友"),
            SimNothingYet => ("Nothing here yet. Say hello!", "目前沒有訊息，打個招呼吧！"),
            SimBadName => (
                "A display name is 1 to 50 characters, without control characters.",
                "顯示名稱須為 1 到 50 個字元，且不含控制字元。",
            ),
            SimAccount => ("Official account", "官方帳號"),
            // --- working together
            FilterWho => ("Show", "顯示"),
            FilterAll => ("All", "全部"),
            FilterMine => ("Mine", "我的"),
            FilterUnassigned => ("Unassigned", "未指派"),
            FilterStatus => ("Status", "狀態"),
            FilterAnyStatus => ("Any", "不限"),
            SearchLabel => ("Search", "搜尋"),
            SearchPlaceholder => (
                "Search names and messages (press /)",
                "搜尋名稱與訊息（按 / 鍵）",
            ),
            NoMatches => ("No conversation matches.", "沒有符合條件的對話。"),
            StatusOpen => ("Open", "處理中"),
            StatusPending => ("Pending", "等待回覆"),
            StatusResolved => ("Resolved", "已解決"),
            StatusLabel => ("Status", "狀態"),
            AssigneeLabel => ("Assignee", "負責人"),
            Unassigned => ("Unassigned", "未指派"),
            AssignToMe => ("Assign to me", "指派給我"),
            UnreadTitle => ("unread messages", "則未讀訊息"),
            NotifyOn => ("Notify me", "通知我"),
            NotifyOff => ("Stop notifying", "停止通知"),
            NotifyNewConversation => ("New conversation", "新對話"),
            Back => ("Conversations", "對話列表"),
            Contact => ("Contact", "聯絡人"),
            ContactPicture => ("Profile picture", "大頭貼"),
            ContactLineId => ("LINE ID", "LINE ID"),
            ContactLanguage => ("Language", "語言"),
            ContactFollow => ("Friendship", "好友狀態"),
            FollowUnknown => ("unknown", "不明"),
            FollowFollowing => ("friend", "好友"),
            FollowUnfollowed => ("blocked the account", "已封鎖帳號"),
            FollowJoined => ("account in the chat", "帳號在聊天中"),
            FollowLeft => ("account left the chat", "帳號已離開聊天"),
            FirstSeen => ("First seen", "首次聯繫"),
            LastSeen => ("Last seen", "最近聯繫"),
            // --- error answers
            ErrBadRequest => ("That request could not be accepted.", "無法接受這個請求。"),
            ErrSignedOut => (
                "You are signed out. Sign in again.",
                "你已登出，請重新登入。",
            ),
            ErrForbidden => (
                "Not allowed. If the page has been open a long time, reload it and try again.",
                "沒有權限。若頁面已開啟很久，請重新整理後再試一次。",
            ),
            ErrNotFound => (
                "Not found. It may have been removed.",
                "找不到，可能已被移除。",
            ),
            ErrTimeout => ("That took too long. Try again.", "處理逾時，請再試一次。"),
            ErrTooLarge => ("That is too large.", "內容太大。"),
            ErrTooMany => (
                "Too many requests. Wait a moment and try again.",
                "請求太頻繁，請稍候再試。",
            ),
            ErrUnavailable => (
                "linechat is briefly unavailable. Try again in a moment.",
                "linechat 暫時無法使用，請稍後再試。",
            ),
            ErrServer => (
                "Something went wrong on our side. Try again; if it keeps failing, tell your administrator.",
                "系統發生錯誤。請再試一次；若持續失敗，請通知管理員。",
            ),
            ErrBackToInbox => ("Back to the inbox", "回到收件匣"),
            ErrNetwork => (
                "Cannot reach linechat. Check your connection; nothing was sent.",
                "無法連線到 linechat。請檢查網路連線；內容尚未送出。",
            ),
            // --- message kinds in the thread, older history, stickers
            StickerAlt => ("sticker", "貼圖"),
            ImageAlt => ("image from the customer", "顧客傳送的圖片"),
            GroupMember => ("a member", "成員"),
            MediaDownloading => ("downloading…", "下載中…"),
            MediaFailed => ("could not be downloaded from LINE", "無法從 LINE 下載"),
            MediaExternal => ("open at the sender's provider", "在傳送者的服務開啟"),
            MediaExternalNoLink => (
                "kept outside LINE, no secure link",
                "存放於 LINE 以外，沒有安全連結",
            ),
            OpenMap => ("Open in Google Maps", "在 Google 地圖開啟"),
            LoadingOlder => ("Loading earlier messages…", "正在載入較早的訊息…"),
            Stickers => ("Stickers", "貼圖"),
            SendSticker => ("Send this sticker", "傳送這張貼圖"),
            // --- admin page, settings, per-agent language
            AdminLink => ("Admin", "管理"),
            AdminTitle => ("Administration", "系統管理"),
            AdminAgents => ("Agents", "客服人員"),
            AdminAddAgent => ("Add an agent", "新增客服人員"),
            DisplayName => ("Display name", "顯示名稱"),
            Role => ("Role", "角色"),
            RoleAgent => ("Agent", "客服人員"),
            RoleAdmin => ("Admin", "管理員"),
            AgentState => ("State", "狀態"),
            AgentActive => ("active", "啟用中"),
            AgentInactive => ("deactivated", "已停用"),
            Deactivate => ("Deactivate", "停用"),
            Reactivate => ("Reactivate", "重新啟用"),
            ChangeRole => ("Change role", "變更角色"),
            ResetPassword => ("Reset password", "重設密碼"),
            NewPassword => ("New password", "新密碼"),
            PasswordRule => ("At least 8 characters.", "至少 8 個字元。"),
            UsernameRule => (
                "2 to 32 lowercase letters, digits, dots, dashes or underscores.",
                "2 到 32 個小寫英文字母、數字、點、連字號或底線。",
            ),
            You => ("(you)", "（你）"),
            AgentAdded => ("Agent added.", "已新增客服人員。"),
            PasswordWasReset => (
                "Password reset; the agent's other sessions have been signed out.",
                "密碼已重設；該客服人員的其他登入工作階段已登出。",
            ),
            AgentUpdated => ("Agent updated.", "已更新客服人員。"),
            ErrUsernameRule => (
                "The username must be 2 to 32 lowercase letters, digits, dots, dashes or underscores.",
                "帳號須為 2 到 32 個小寫英文字母、數字、點、連字號或底線。",
            ),
            ErrUsernameTaken => ("That username is already taken.", "此帳號已被使用。"),
            ErrDisplayNameRule => (
                "The display name must be 1 to 50 characters, without control characters.",
                "顯示名稱須為 1 到 50 個字元，且不含控制字元。",
            ),
            ErrPasswordShort => (
                "The password must be at least 8 characters long.",
                "密碼長度至少須為 8 個字元。",
            ),
            ErrPasswordLong => (
                "The password must be at most 1,024 characters long.",
                "密碼長度最多為 1,024 個字元。",
            ),
            ErrBadRole => (
                "Pick a role: agent or admin.",
                "請選擇角色：客服人員或管理員。",
            ),
            ErrLastAdmin => (
                "The desk must keep at least one active admin.",
                "系統必須保留至少一位啟用中的管理員。",
            ),
            ErrNotYourself => (
                "You cannot deactivate or demote yourself; ask another admin.",
                "你不能停用自己或移除自己的管理員身分，請由其他管理員操作。",
            ),
            ErrNoSuchAgent => ("That agent does not exist.", "找不到這位客服人員。"),
            SettingsTitle => ("Settings", "設定"),
            WelcomeMessage => ("Welcome message", "歡迎訊息"),
            WelcomeHint => (
                "Sent when someone adds the account as a friend. Leave empty to send none.",
                "有人將帳號加為好友時傳送。留白則不傳送。",
            ),
            MarkAsReadSwitch => (
                "Mark the customer's messages as read on LINE when an agent opens the conversation",
                "客服人員開啟對話時，在 LINE 上將顧客的訊息標示為已讀",
            ),
            LoadingSwitch => (
                "Show the customer LINE's loading animation while an agent types (1:1 chats only)",
                "客服人員輸入時，向顧客顯示 LINE 的載入動畫（僅限一對一聊天）",
            ),
            WebhookUrl => ("Webhook URL", "Webhook 網址"),
            WebhookUrlHint => (
                "Paste this into the LINE Developers console: your channel → Messaging API → Webhook URL, then turn on \"Use webhook\".",
                "請貼到 LINE Developers 主控台：你的頻道 → Messaging API → Webhook URL，並開啟「Use webhook」。",
            ),
            Copy => ("Copy", "複製"),
            Copied => ("Copied", "已複製"),
            Save => ("Save", "儲存"),
            SettingsSaved => ("Settings saved.", "設定已儲存。"),
            ErrWelcomeTooLong => (
                "The welcome message is longer than LINE's 5,000-character limit.",
                "歡迎訊息超過 LINE 的 5,000 字上限。",
            ),
            Language => ("Language", "語言"),
            LangBrowser => ("Browser default", "依瀏覽器設定"),
            LangEnglish => ("English", "English"),
            LangChinese => ("繁體中文", "繁體中文"),
            Apply => ("Apply", "套用"),
            ConfirmDeactivate => (
                "Deactivate this agent? They are signed out at once and cannot sign in until reactivated.",
                "要停用這位客服人員嗎？對方會立即被登出，重新啟用前無法登入。",
            ),
        };
        match self {
            Lang::En => en,
            Lang::ZhTw => zh,
        }
    }
}

/// A signed-in agent's own language choice, as a request extension.
#[derive(Clone, Copy, Debug)]
pub struct Chosen(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Lang::of_request(&parts.extensions, &parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_by_accept_language() {
        assert_eq!(
            Lang::from_accept_language("zh-TW,zh;q=0.9,en;q=0.8"),
            Lang::ZhTw
        );
        assert_eq!(Lang::from_accept_language("en-US,en;q=0.9"), Lang::En);
        assert_eq!(Lang::from_accept_language("fr, zh-Hant;q=0.5"), Lang::ZhTw);
        assert_eq!(
            Lang::from_accept_language("en;q=0.4, zh-TW;q=0.8"),
            Lang::ZhTw
        );
        assert_eq!(Lang::from_accept_language("zh-CN"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
    }

    #[test]
    fn both_languages_differ_where_it_matters() {
        assert_ne!(Lang::En.t(Msg::SignIn), Lang::ZhTw.t(Msg::SignIn));
    }
}
