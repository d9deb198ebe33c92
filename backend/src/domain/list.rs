//! Lists, the people in them and what each may do.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::ids::{ListId, UserId};
use super::position::Position;
use super::task::{TextError, check_text};
use super::text::is_invisible;

/// The most characters a list's name may have.
pub const LIST_NAME_MAX_CHARS: usize = 100;
/// The most members a list may have, its owner included.
pub const MAX_MEMBERS: i64 = 50;
/// The most lists one user may belong to.
pub const MAX_LISTS_PER_USER: i64 = 1000;

/// What a member may do with a list and its tasks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read the list and its tasks.
    Viewer,
    /// Read and write the tasks, rename the list.
    Editor,
    /// Everything: members, invitations, transfer, delete. Exactly one per list.
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role may write the list's tasks and rename the list.
    pub fn can_write(self) -> bool {
        self >= Role::Editor
    }

    pub fn parse(stored: &str) -> Option<Role> {
        match stored {
            "owner" => Some(Role::Owner),
            "editor" => Some(Role::Editor),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role that can be given by invitation or by a role change: not `owner` (ownership moves
/// only by transfer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Editor,
    Viewer,
}

impl From<MemberRole> for Role {
    fn from(role: MemberRole) -> Self {
        match role {
            MemberRole::Editor => Role::Editor,
            MemberRole::Viewer => Role::Viewer,
        }
    }
}

/// A list's name: 1 to 100 characters, at least one visible, no NUL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ListName(String);

impl TryFrom<String> for ListName {
    type Error = TextError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        if name.chars().all(is_invisible) {
            return Err(TextError::Blank);
        }
        check_text(&name, LIST_NAME_MAX_CHARS)?;
        Ok(ListName(name))
    }
}

impl ListName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A list's colour: `#rrggbb`, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Color(String);

impl TryFrom<String> for Color {
    type Error = &'static str;

    fn try_from(color: String) -> Result<Self, Self::Error> {
        let hex = color.strip_prefix('#').unwrap_or_default();
        if hex.len() == 6 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Color(color))
        } else {
            Err("must be a colour written #rrggbb in lowercase hex")
        }
    }
}

impl Color {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A list as one member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct List {
    #[schema(value_type = i64, example = 3, minimum = 1)]
    pub id: ListId,
    #[schema(example = "Groceries", min_length = 1, max_length = 100)]
    pub name: String,
    /// `#rrggbb`, or `null`.
    #[schema(example = "#3b82f6", pattern = "^#[0-9a-f]{6}$")]
    pub color: Option<String>,
    /// The caller's own order of their lists: an opaque key, compared as bytes.
    #[schema(value_type = String, example = "a0")]
    pub position: Position,
    /// Whether this is the caller's Inbox (it cannot be deleted or shared).
    pub is_inbox: bool,
    /// The caller's role in the list.
    pub role: Role,
    #[schema(value_type = String, example = "user_2NNEqL")]
    pub owner_id: UserId,
    #[schema(minimum = 1, maximum = 50)]
    pub member_count: i64,
    /// 1 at create, +1 on every change of the list (name, colour, members, trash).
    #[schema(minimum = 1)]
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the owner moved the list to the trash; `null` otherwise.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The body of `POST /api/lists`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateList {
    #[schema(value_type = String, min_length = 1, max_length = 100, example = "Groceries")]
    pub name: ListName,
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^#[0-9a-f]{6}$")]
    pub color: Option<Color>,
}

/// The body of `PATCH /api/lists/{list_id}`: absent fields unchanged.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateList {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 100)]
    pub name: Option<ListName>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, pattern = "^#[0-9a-f]{6}$")]
    pub color: Option<Option<Color>>,
}

impl UpdateList {
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.color.is_none()
    }
}

/// A member of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Member {
    #[schema(value_type = String)]
    pub user_id: UserId,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// The body of `POST /api/lists/{list_id}/invitations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    pub role: MemberRole,
    /// 1 to 720; 168 (a week) by default.
    #[serde(default = "default_expiry", deserialize_with = "bounded::<1, 720, _>")]
    #[schema(minimum = 1, maximum = 720, default = 168)]
    pub expires_in_hours: i64,
    /// 1 to 50; 1 by default.
    #[serde(default = "default_uses", deserialize_with = "bounded::<1, 50, _>")]
    #[schema(minimum = 1, maximum = 50, default = 1)]
    pub max_uses: i64,
}

fn default_expiry() -> i64 {
    168
}

fn default_uses() -> i64 {
    1
}

/// An invitation as its list's owner sees it (never with its secret, but once at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Invitation {
    #[schema(minimum = 1)]
    pub id: i64,
    #[schema(value_type = i64)]
    pub list_id: ListId,
    pub role: Role,
    pub max_uses: i64,
    pub uses: i64,
    #[schema(value_type = String)]
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new invitation with its secret, shown once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewInvitation {
    #[serde(flatten)]
    pub invitation: Invitation,
    /// The secret to pass on to the invitee; only its hash is kept.
    pub token: String,
}

/// What an invitation's token led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The caller joined the list.
    Joined(ListId),
    /// The caller was a member already (the owner excepted): nothing changed.
    AlreadyMember(ListId),
    /// The caller owns the list.
    Owner,
    /// No invitation with this token that can still be used.
    Unknown,
    /// The list has [`MAX_MEMBERS`] members.
    ListFull,
    /// The caller belongs to [`MAX_LISTS_PER_USER`] lists.
    TooManyLists,
}

/// Everything of one user's, as `GET /api/me/export` returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Export {
    #[schema(value_type = String)]
    pub user_id: UserId,
    /// The lists the user owns (in the trash too), each with its members and all its tasks.
    pub lists: Vec<ExportedList>,
    /// The lists of others the user is a member of, as the user sees them.
    pub memberships: Vec<List>,
    /// The tasks the user created in lists they do not own.
    pub tasks_elsewhere: Vec<super::task::Task>,
}

/// One owned list in an export.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExportedList {
    #[serde(flatten)]
    pub list: List,
    pub members: Vec<Member>,
    pub tasks: Vec<super::task::Task>,
}

/// The body of `POST /api/invitations/accept`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitation {
    #[schema(max_length = 100)]
    pub token: String,
}

/// The body of `PATCH /api/lists/{list_id}/members/{user_id}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    pub role: MemberRole,
}

/// The body of `POST /api/lists/{list_id}/transfer`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// A member of the list.
    #[schema(value_type = String, min_length = 1, max_length = 255)]
    pub user_id: UserId,
}

/// An integer field from `MIN` to `MAX`, written as an integer.
fn bounded<'de, const MIN: i64, const MAX: i64, D: Deserializer<'de>>(
    d: D,
) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(d)?;
    number
        .as_i64()
        .filter(|n| (MIN..=MAX).contains(n))
        .ok_or_else(|| D::Error::custom(format!("must be an integer from {MIN} to {MAX}")))
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_colours_are_checked() {
        assert!(ListName::try_from("Groceries".to_owned()).is_ok());
        assert!(ListName::try_from("x".repeat(100)).is_ok());
        assert!(ListName::try_from("x".repeat(101)).is_err());
        assert!(ListName::try_from("  ".to_owned()).is_err());
        assert!(Color::try_from("#00ff7a".to_owned()).is_ok());
        for bad in ["#00FF7A", "00ff7a", "#00ff7", "#00ff7ag", "#gggggg"] {
            assert!(Color::try_from(bad.to_owned()).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_order_by_power() {
        assert!(Role::Owner.can_write() && Role::Editor.can_write());
        assert!(!Role::Viewer.can_write());
        assert_eq!(Role::parse("editor"), Some(Role::Editor));
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn invitation_bounds_are_enforced() {
        let parse = |body: &str| serde_json::from_str::<CreateInvitation>(body);
        let default = parse(r#"{"role":"viewer"}"#).expect("parses");
        assert_eq!((default.expires_in_hours, default.max_uses), (168, 1));
        for bad in [
            r#"{"role":"owner"}"#,
            r#"{"role":"viewer","max_uses":51}"#,
            r#"{"role":"viewer","expires_in_hours":0}"#,
            r#"{"role":"viewer","expires_in_hours":1.0}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
