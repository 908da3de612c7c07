"""Reads an Atom feed with feedparser, an independent parser, and prints what it found as
JSON, for the publish tests to check.

    python3 tests/servers/read_feed.py FEED.xml

Prints {"bozo": …, "version": …, "feed": {…}, "entries": [{…}]}; "bozo" is feedparser's word
for a feed that is not well-formed XML.
"""

import json
import sys

import feedparser


def main():
    d = feedparser.parse(sys.argv[1])
    feed = d.feed
    out = {
        "bozo": bool(d.bozo),
        "bozo_exception": str(d.get("bozo_exception", "")),
        "version": d.version,
        "feed": {
            "id": feed.get("id"),
            "title": feed.get("title"),
            "updated": feed.get("updated"),
            "language": feed.get("language"),
            "author": feed.get("author"),
            "links": [
                {"rel": l.get("rel"), "href": l.get("href"), "type": l.get("type")}
                for l in feed.get("links", [])
            ],
        },
        "entries": [
            {
                "id": e.get("id"),
                "title": e.get("title"),
                "updated": e.get("updated"),
                "published": e.get("published"),
                "link": e.get("link"),
                "summary": e.get("summary"),
                "content": [
                    {"type": c.get("type"), "base": c.get("base"), "value": c.get("value")}
                    for c in e.get("content", [])
                ],
            }
            for e in d.entries
        ],
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
