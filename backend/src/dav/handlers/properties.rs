//! PROPFIND and PROPPATCH: the properties of the root, the principal, the calendar home, each
//! calendar and each task.

use axum::response::Response;

use super::{
    Dav, MAX_BODY_BYTES, collection_etag, depth, document, http_date, multistatus, not_found,
    sync_token,
};
use crate::dav::objects::Objects;
use crate::dav::paths::{self, Target};
use crate::dav::xml::{self, APPLE, CALDAV, CS, DAV, Element, Multistatus};
use crate::domain::calendar::CalendarTags;
use crate::domain::list::{Color, ListName, UpdateList};
use crate::domain::{List, Role, Task};
use crate::http::ApiError;
use crate::http::etag::task_etag;

/// The properties a request asks for.
pub(super) enum Wanted {
    /// `allprop` (or no body): the usual ones, without `calendar-data`.
    All,
    Named(Vec<(String, String)>),
}

impl Wanted {
    /// The `prop` (or `allprop`/`propname`) of a PROPFIND or REPORT body.
    pub(super) fn of(root: &Element) -> Wanted {
        match root.child(DAV, "prop") {
            Some(prop) => Wanted::Named(
                prop.children
                    .iter()
                    .map(|p| (p.namespace.clone(), p.name.clone()))
                    .collect(),
            ),
            None => Wanted::All,
        }
    }

    pub(super) fn includes(&self, namespace: &str, name: &str) -> bool {
        match self {
            Wanted::All => !(namespace == CALDAV && name == "calendar-data"),
            Wanted::Named(names) => names.iter().any(|(n, l)| n == namespace && l == name),
        }
    }

    /// Writes one resource: the wanted properties it has, and those it has not.
    pub(super) fn answer(&self, answer: &mut Multistatus, href: &str, properties: Vec<Property>) {
        let mut found = Vec::new();
        for property in &properties {
            if self.includes(property.namespace, property.name) {
                found.push(property.xml());
            }
        }
        let missing = match self {
            Wanted::All => Vec::new(),
            Wanted::Named(names) => names
                .iter()
                .filter(|(namespace, name)| {
                    !properties
                        .iter()
                        .any(|p| p.namespace == namespace && p.name == name)
                })
                .cloned()
                .collect(),
        };
        answer.response(href, &found, &missing);
    }
}

/// A property of a resource: its name and its value as XML.
pub(super) struct Property {
    namespace: &'static str,
    name: &'static str,
    value: String,
}

impl Property {
    pub(super) fn new(
        namespace: &'static str,
        name: &'static str,
        value: impl Into<String>,
    ) -> Self {
        Property {
            namespace,
            name,
            value: value.into(),
        }
    }

    pub(super) fn href(namespace: &'static str, name: &'static str, href: &str) -> Self {
        Property::new(
            namespace,
            name,
            format!("<d:href>{}</d:href>", xml::text(href)),
        )
    }

    pub(super) fn xml(&self) -> String {
        match self.value.is_empty() {
            true => xml::empty_element(self.namespace, self.name),
            false => xml::element(self.namespace, self.name, &self.value),
        }
    }
}

impl Dav<'_> {
    pub(super) fn common(&self) -> Vec<Property> {
        vec![Property::href(
            DAV,
            "current-user-principal",
            &self.principal_href(),
        )]
    }

    pub(super) fn root_properties(&self) -> Vec<Property> {
        let mut properties = self.common();
        properties.push(Property::new(DAV, "resourcetype", "<d:collection/>"));
        properties.push(Property::href(
            DAV,
            "principal-collection-set",
            "/dav/principals/",
        ));
        properties
    }

    pub(super) fn principal_properties(&self) -> Vec<Property> {
        let mut properties = self.common();
        properties.extend([
            Property::new(DAV, "resourcetype", "<d:collection/><d:principal/>"),
            Property::new(DAV, "displayname", xml::text(self.user.as_str())),
            Property::href(DAV, "principal-URL", &self.principal_href()),
            Property::href(CALDAV, "calendar-home-set", &paths::home(self.user)),
        ]);
        properties
    }

    pub(super) fn home_properties(&self) -> Vec<Property> {
        let mut properties = self.common();
        properties.extend([
            Property::new(DAV, "resourcetype", "<d:collection/>"),
            Property::new(DAV, "displayname", "Lists"),
            Property::href(DAV, "owner", &self.principal_href()),
        ]);
        properties
    }

    pub(super) fn calendar_properties(&self, list: &List, tags: &CalendarTags) -> Vec<Property> {
        let (tag, token) = (tags.tag, tags.token);
        let privileges = match list.role {
            Role::Viewer => {
                "<d:privilege><d:read/></d:privilege>\
                <d:privilege><d:read-current-user-privilege-set/></d:privilege>"
            }
            Role::Editor | Role::Owner => {
                "<d:privilege><d:read/></d:privilege>\
                <d:privilege><d:read-current-user-privilege-set/></d:privilege>\
                <d:privilege><d:write/></d:privilege>\
                <d:privilege><d:write-content/></d:privilege>\
                <d:privilege><d:write-properties/></d:privilege>\
                <d:privilege><d:bind/></d:privilege>\
                <d:privilege><d:unbind/></d:privilege>"
            }
        };
        let reports = ["calendar-query", "calendar-multiget", "free-busy-query"]
            .iter()
            .map(|name| format!("<d:supported-report><d:report><c:{name}/></d:report></d:supported-report>"))
            .chain(std::iter::once(
                "<d:supported-report><d:report><d:sync-collection/></d:report></d:supported-report>"
                    .to_owned(),
            ))
            .collect::<String>();
        let mut properties = self.common();
        properties.extend([
            Property::new(DAV, "resourcetype", "<d:collection/><c:calendar/>"),
            Property::new(DAV, "displayname", xml::text(&list.name)),
            Property::new(
                CALDAV,
                "supported-calendar-component-set",
                "<c:comp name=\"VTODO\"/>",
            ),
            Property::new(
                CALDAV,
                "supported-calendar-data",
                "<c:calendar-data content-type=\"text/calendar\" version=\"2.0\"/>",
            ),
            Property::new(CALDAV, "max-resource-size", MAX_BODY_BYTES.to_string()),
            Property::new(CS, "getctag", xml::text(&tag.to_string())),
            Property::new(DAV, "sync-token", xml::text(&sync_token(token))),
            Property::new(DAV, "getetag", xml::text(&collection_etag(tag))),
            Property::new(DAV, "current-user-privilege-set", privileges),
            Property::new(DAV, "supported-report-set", reports),
            Property::href(DAV, "owner", &self.principal_href()),
        ]);
        if let Some(color) = &list.color {
            // Apple's form, which calendar apps write back: `#RRGGBBAA`.
            let apple = format!("{}FF", color.to_ascii_uppercase());
            properties.push(Property::new(APPLE, "calendar-color", xml::text(&apple)));
        }
        properties
    }

    pub(super) fn object_properties(
        &self,
        objects: &Objects,
        task: &Task,
        wanted: &Wanted,
    ) -> Vec<Property> {
        let etag = task_etag(task.id, task.version);
        let mut properties = vec![
            Property::new(DAV, "getetag", xml::text(etag.to_str().unwrap_or_default())),
            Property::new(
                DAV,
                "getcontenttype",
                "text/calendar; charset=utf-8; component=VTODO",
            ),
            Property::new(DAV, "resourcetype", ""),
            Property::new(DAV, "getlastmodified", http_date(task.updated_at)),
        ];
        if wanted.includes(CALDAV, "calendar-data") {
            properties.push(Property::new(
                CALDAV,
                "calendar-data",
                xml::text(&objects.render(task)),
            ));
        }
        properties
    }

    pub(super) async fn propfind(&self, target: Target) -> Result<Response, ApiError> {
        let wanted = match document(self.body)? {
            Some(root) if root.is(DAV, "propfind") => Wanted::of(&root),
            Some(_) => return Err(ApiError::BadRequest("expected a DAV:propfind body".into())),
            None => Wanted::All,
        };
        let depth = depth(self.headers, 1);
        let mut answer = Multistatus::default();
        match target {
            Target::Root => {
                wanted.answer(&mut answer, &paths::root(), self.root_properties());
            }
            Target::Principal => {
                wanted.answer(
                    &mut answer,
                    &self.principal_href(),
                    self.principal_properties(),
                );
            }
            Target::Home => {
                wanted.answer(&mut answer, &paths::home(self.user), self.home_properties());
                if depth > 0 {
                    // The lists first: a new user's Inbox is made when they are first read.
                    let lists = self.state.lists.lists_of(self.user).await?;
                    let tags = self.state.calendars.collection_tags(self.user).await?;
                    for list in lists {
                        let Some(tags) = tags.iter().find(|tags| tags.list == list.id) else {
                            continue;
                        };
                        let href = paths::calendar(self.user, list.id, tags.name.as_deref());
                        let properties = self.calendar_properties(&list, tags);
                        wanted.answer(&mut answer, &href, properties);
                    }
                }
            }
            Target::Calendar(collection) => {
                let (list, tags) = self.calendar(&collection).await?;
                let properties = self.calendar_properties(&list, &tags);
                wanted.answer(&mut answer, &self.base, properties);
                if depth > 0 {
                    let objects = Objects::load(self.state, self.user, list.id).await?;
                    for task in &objects.tasks {
                        let href = self.object_href(objects.name(task));
                        let properties = self.object_properties(&objects, task, &wanted);
                        wanted.answer(&mut answer, &href, properties);
                    }
                }
            }
            Target::Object(collection, name) => {
                let list = self.resolve(&collection).await?;
                let objects = Objects::named(self.state, self.user, list, &[&name], &[]).await?;
                let task = objects.find_named(&name).ok_or_else(not_found)?;
                let properties = self.object_properties(&objects, task, &wanted);
                wanted.answer(&mut answer, &self.object_href(&name), properties);
            }
        }
        Ok(multistatus(answer.finish(None)))
    }

    /// `PROPPATCH` of a calendar: its `displayname` and `calendar-color` are the list's name
    /// and colour (owner or editor); any other property is refused, and then nothing is set
    /// (RFC 4918 §9.2: all or nothing).
    pub(super) async fn proppatch(&self, target: Target) -> Result<Response, ApiError> {
        let Target::Calendar(collection) = &target else {
            return Err(ApiError::Forbidden(
                "only a calendar's properties can be set",
            ));
        };
        let (list, _) = self.calendar(collection).await?;
        let root = document(self.body)?
            .filter(|root| root.is(DAV, "propertyupdate"))
            .ok_or_else(|| ApiError::BadRequest("expected a DAV:propertyupdate body".into()))?;
        let mut changes = UpdateList::default();
        let (mut settable, mut refused) = (Vec::new(), Vec::new());
        for action in &root.children {
            let remove = action.is(DAV, "remove");
            let Some(prop) = action.child(DAV, "prop") else {
                continue;
            };
            for property in &prop.children {
                let name = xml::empty_element(&property.namespace, &property.name);
                let value = property.text.trim();
                let set = match (property.namespace.as_str(), property.name.as_str()) {
                    (DAV, "displayname") if !remove => ListName::try_from(value.to_owned())
                        .ok()
                        .map(|name| changes.name = Some(name)),
                    (APPLE, "calendar-color") => {
                        color(value, remove).map(|color| changes.color = Some(color))
                    }
                    _ => None,
                };
                match set {
                    Some(()) => settable.push(name),
                    None => refused.push(name),
                }
            }
        }
        let mut answer = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus xmlns:d=\"DAV:\" \
             xmlns:c=\"{CALDAV}\" xmlns:cs=\"{CS}\" xmlns:a=\"{APPLE}\"><d:response>\
             <d:href>{}</d:href>",
            xml::text(&self.base)
        );
        let propstat = |names: &[String], status: &str| {
            format!(
                "<d:propstat><d:prop>{}</d:prop><d:status>HTTP/1.1 {status}</d:status>\
                 </d:propstat>",
                names.concat()
            )
        };
        if refused.is_empty() {
            if !changes.is_empty() {
                self.state
                    .lists
                    .update_list(self.user, list.id, changes)
                    .await?;
            }
            answer.push_str(&propstat(&settable, "200 OK"));
        } else {
            answer.push_str(&propstat(&refused, "403 Forbidden"));
            if !settable.is_empty() {
                answer.push_str(&propstat(&settable, "424 Failed Dependency"));
            }
        }
        answer.push_str("</d:response></d:multistatus>\n");
        Ok(multistatus(answer))
    }
}

/// A list's colour from a `calendar-color`: `#rrggbb` or Apple's `#rrggbbaa` (the list keeps
/// `#rrggbb`); empty or removed, none. `None` for anything else (a colour's name).
pub(super) fn color(value: &str, remove: bool) -> Option<Option<Color>> {
    if remove || value.is_empty() {
        return Some(None);
    }
    let hex = value.to_ascii_lowercase();
    let hex = match hex.len() {
        // Apple's alpha, which the list does not keep, must still be hex.
        9 if hex[7..].bytes().all(|b| b.is_ascii_hexdigit()) => &hex[..7],
        _ => hex.as_str(),
    };
    Color::try_from(hex.to_owned()).ok().map(Some)
}
