"""Building memory entries and driving the memory admin's change forms, for
the memory tests."""

import json
from html.parser import HTMLParser

from django.urls import reverse

from qefleet.memory.models import AccessLevel, MemoryEntry


def url(model, view="changelist", *args):
    return reverse(f"admin:memory_{model._meta.model_name}_{view}", args=args)


def entry(owner, key="notes/plan", level=AccessLevel.PRIVATE, value=None, **fields):
    record = MemoryEntry(partition="default", key=key, value=value if value is not None else {"step": 1}, **fields)
    record.assign_owner(owner, level)
    record.save()
    return record


class FormScraper(HTMLParser):
    """The fields a browser would submit from the page's main form."""

    def __init__(self):
        super().__init__()
        self.data, self.textarea, self.select = {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            self.data[name] = attrs.get("value", "on" if attrs.get("type") == "checkbox" else "")
        elif tag == "textarea" and name:
            self.textarea = name
            self.data[name] = ""
        elif tag == "select" and name:
            self.select = name
            self.data.setdefault(name, "")
        elif tag == "option" and self.select and "selected" in attrs:
            self.data[self.select] = attrs.get("value", "")

    def handle_endtag(self, tag):
        if tag == "textarea":
            self.textarea = None
        elif tag == "select":
            self.select = None

    def handle_data(self, data):
        if self.textarea:
            self.data[self.textarea] += data.lstrip("\n") if not self.data[self.textarea] else data


def scrape(response):
    assert response.status_code == 200
    scraper = FormScraper()
    scraper.feed(response.content.decode())
    scraper.data.pop("csrfmiddlewaretoken", None)
    return {name: value for name, value in scraper.data.items() if "__prefix__" not in name}


def entry_form(client, record, grants=None, blocks=None, **changes):
    """The entry's change form as loaded now (with its ACL inline), changed."""
    data = scrape(client.get(url(MemoryEntry, "change", record.pk)))
    if grants is not None:
        data["acl_record-0-granted_permissions"] = grants if isinstance(grants, str) else json.dumps(grants)
    if blocks is not None:
        data["acl_record-0-blocked_agents"] = blocks if isinstance(blocks, str) else json.dumps(blocks)
    data.update(changes)
    return data


def save_entry(client, data, record):
    return client.post(url(MemoryEntry, "change", record.pk), data)


def errors_of(response):
    """Every error the admin change form shows (main form and inlines)."""
    found = list(response.context["errors"])
    for inline in response.context["inline_admin_formsets"]:
        found += [str(error) for error in inline.formset.non_form_errors()]
        for form in inline.formset.forms:
            found += [str(message) for messages in form.errors.values() for message in messages]
    return " ".join(str(error) for error in found)
