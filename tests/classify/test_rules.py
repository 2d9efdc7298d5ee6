"""The image-prompt rules: living-artist styles, public figures who are minors, opt-outs."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from safestack.classify import Classifier, create_classifier
from safestack.classify.rules import (
    ArtistStyleRule,
    NameIndex,
    NameRegistry,
    PublicFigure,
    PublicFigureRule,
    adult_from,
    load_artists,
    load_figures,
    tokenize,
)
from safestack.errors import ConfigError, InputError
from safestack.gateway import GatewayConfig, create_app
from safestack.store import Store

DATA = Path(__file__).resolve().parents[2] / "src/safestack/classify/rules/data"
TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def artists() -> ArtistStyleRule:
    return ArtistStyleRule()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path}/rules.db") as store:
        store.migrate()
        yield store


def _flagged(rule: Classifier, text: str) -> bool:
    return rule.classify([text])[0].flagged


# -- living-artist styles -------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "a castle in the style of Greg Rutkowski",
        "a lighthouse, art by greg rutkowski",
        "a swimming pool painted by David Hockney",
        "Hockney-style swimming pool",
        "a pool, David Hockney style",
        "a fox like Banksy",
        "a street mural inspired by Banksy",
        "the sea as Hockney would paint it",
        "a market à la Banksy",
        "a garden in Kusama's style",
        "a garden with Yayoi Kusama's signature style",
        "a Rutkowski-esque battle scene",
        "fantasy castle, greg rutkowski, artstation, 4k",
        "a castle, (greg rutkowski:1.2), volumetric light",
        "a city in the style of Van Gogh and Greg Rutkowski",
        "Rutkowski and Mucha style dragon",
        "a Hockney painting of a pool",
        "inspired by Kusama's work, a room of mirrors",
        "a street in the style of Simon Stålenhag",
        "a city, #GregRutkowski",
        "a wizard in the manner of Craig Mullins",
        "a bouquet, a mix of Monet and Yayoi Kusama",
    ],
)
def test_style_phrasings_are_flagged(artists: ArtistStyleRule, prompt: str) -> None:
    verdict = artists.classify([prompt])[0]
    assert verdict.flagged, prompt
    assert verdict.categories == ["intellectual_property"]
    assert verdict.label == "living_artist_style"
    assert verdict.scores == {"intellectual_property": 1.0}


@pytest.mark.parametrize(
    ("prompt", "artist"),
    [
        ("a castle in the style of Greg Rutkowsky", "Greg Rutkowski"),
        ("a castle in the style of greg rutkowksi", "Greg Rutkowski"),
        ("a mural by Bansky", "Banksy"),
        ("a mural, Banksey style", "Banksy"),
        ("polka dots in the style of Yayoi Kusamma", "Yayoi Kusama"),
        ("a pool in the style of David Hokney", "David Hockney"),
        ("a portrait in the style of Annie Liebovitz", "Annie Leibovitz"),
        ("a girl in the style of Artgrem", "Stanley Lau"),
    ],
)
def test_misspelt_names_are_flagged_and_named(
    artists: ArtistStyleRule, prompt: str, artist: str
) -> None:
    verdict = artists.classify([prompt])[0]
    assert verdict.flagged, prompt
    assert verdict.rationale is not None and artist in verdict.rationale
    assert "read " in verdict.rationale  # says which spelling it read as the name


def test_rationale_names_artist_and_phrase(artists: ArtistStyleRule) -> None:
    rationale = artists.classify(["a cat in the style of Yayoi Kusama"])[0].rationale
    assert rationale is not None
    assert "Yayoi Kusama" in rationale and "in the style of yayoi kusama" in rationale


def test_deceased_artists_and_movements_are_allowed(artists: ArtistStyleRule) -> None:
    examples = load_artists().allowed_examples
    assert len(examples.deceased) >= 40 and len(examples.movements) >= 20
    prompts = [f"a harbour at dusk in the style of {name}" for name in examples.deceased]
    prompts += [f"a harbour at dusk, {m}" for m in examples.movements]
    prompts += [f"a harbour at dusk in the style of {m}" for m in examples.movements]
    flagged = [p for p, v in zip(prompts, artists.classify(prompts), strict=True) if v.flagged]
    assert flagged == []


@pytest.mark.parametrize(
    "prompt",
    [
        "a biography of David Hockney",
        "which museum shows Kusama's work?",
        "a portrait photo of Ai Weiwei at a gallery opening",
        "a crowd surrounded by Kusama's pumpkins",
        "a man who looks like David Hockney",
        "Yayoi Kusama, smiling, in her studio",
        "a vintage hockey-style helmet",
        "river banks at dawn",
        "a cobra coiled on a rock",
        "a grey wolf by a lake",
        "a Richter scale diagram",
        "a city street by night, neon lights",
        "a fantasy elf archer, concept art, trending on artstation",
    ],
)
def test_other_mentions_and_lookalike_words_are_allowed(
    artists: ArtistStyleRule, prompt: str
) -> None:
    assert not _flagged(artists, prompt)


def test_packaged_lists_are_sane() -> None:
    listed = load_artists()
    names = [a.name for a in listed.artists]
    assert 100 <= len(names) <= 250
    assert len(set(names)) == len(names)
    deceased = {d.casefold() for d in listed.allowed_examples.deceased}
    assert not deceased & {n.casefold() for n in names}
    assert all(a.born is None or a.born >= 1920 for a in listed.artists)
    figures = load_figures().people
    assert figures and all(f.source.startswith("https://") for f in figures)


def test_custom_list_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "artists.yaml"
    path.write_text("artists:\n  - {name: Zora Quillfeather, aliases: [Quillfeather]}\n")
    rule = ArtistStyleRule(path)
    assert _flagged(rule, "a heron in the style of Zora Quillfeather")
    assert not _flagged(rule, "a heron in the style of Greg Rutkowski")
    assert rule.spec.args == {"artists": 1, "source": str(path)}
    path.write_text("artists:\n  - {name: Zora, born: 'soon'}\n")
    with pytest.raises(ConfigError, match="born"):
        ArtistStyleRule(path)


def test_rules_are_registered_text_classifiers() -> None:
    for name, cls in (("artist-style", ArtistStyleRule), ("public-figures", PublicFigureRule)):
        rule = create_classifier(name)
        assert isinstance(rule, cls) and isinstance(rule, Classifier)
        assert rule.input_kind == "text" and rule.spec.name == name
        assert rule.spec.artifact_sha256 is not None
        with pytest.raises(InputError):
            rule.classify([b"bytes"])  # type: ignore[list-item]


# -- names ----------------------------------------------------------------------------------


def test_tokenize_folds_case_diacritics_and_punctuation() -> None:
    assert tokenize("Stålenhag’s STYLE: Łódź") == ("stalenhag", "'s", "style", ".", "lodz")
    assert tokenize("a, b; c | d") == ("a", ",", "b", ",", "c", ",", "d")


def test_common_words_are_never_read_as_misspelt_names() -> None:
    index = NameIndex.build([PublicFigure(name="Hockney", birth_date="2000", source="x")])
    assert index.find(tokenize("hockney"))
    assert index.find(tokenize("hockny"))
    assert not index.find(tokenize("hockey"))


# -- public figures -------------------------------------------------------------------------


def _minor(birth_date: str) -> PublicFigure:
    return PublicFigure(
        name="Princess Amalthea of Testland",
        aliases=["Princess Amalthea"],
        birth_date=birth_date,
        source="https://example.org",
    )


def test_minor_turns_adult_on_18th_birthday() -> None:
    day = [date(2026, 6, 9)]
    rule = PublicFigureRule([_minor("2008-06-10")], today=lambda: day[0])
    verdict = rule.classify(["a photo of Princess Amalthea at a horse show"])[0]
    assert verdict.flagged and verdict.label == "minor_public_figure"
    assert verdict.categories == ["privacy"]
    assert "2026-06-10" in (verdict.rationale or "")
    day[0] = date(2026, 6, 10)
    assert not _flagged(rule, "a photo of Princess Amalthea at a horse show")


def test_partial_birth_dates_count_as_their_last_day() -> None:
    assert adult_from("2010") == date(2028, 12, 31)
    assert adult_from("2010-02") == date(2028, 2, 28)
    assert adult_from("2008-02-29") == date(2026, 3, 1)
    with pytest.raises(ValueError, match="not YYYY"):
        adult_from("10 June 2008")


def test_default_minors_any_medium_and_adults_allowed() -> None:
    rule = PublicFigureRule(today=lambda: TODAY)
    for prompt in (
        "a photo of Prince George playing football",
        "a watercolor of princess charlotte with a dog",  # any medium: the safe reading
        "Princess Charlote at a school fair",  # one edit in a long name
    ):
        assert _flagged(rule, prompt), prompt
    for prompt in (
        "King Charles III waving from a balcony",  # adult public figures: allowed
        "Princess Leonor of Spain at a parade",
        "a map of Prince George's County",
        "a wall covered with blue ivy",
    ):
        assert not _flagged(rule, prompt), prompt
    # Turned 18 before TODAY, so no longer flagged even when listed.
    adult = PublicFigureRule([_minor("2008-04-16")], today=lambda: TODAY)
    assert not _flagged(adult, "Princess Amalthea")


def test_opt_outs_from_a_real_store(store: Store) -> None:
    store.add_opt_out(
        name="Marisol Quintanilla-Berg",
        kind="public_figure",
        aliases=["Mari Q-Berg", " Mari  Q-Berg ", "marisol quintanilla-berg"],
        actor="test",
    )
    store.add_opt_out(name="Zora Quillfeather", kind="artist", aliases=["Quillfeather"], actor="t")
    [person] = [o for o in store.list_opt_outs() if o.kind == "public_figure"]
    assert person.aliases == ["Mari Q-Berg"]  # stripped, de-duplicated, not the name again
    registry = NameRegistry(store.list_opt_outs())
    people = PublicFigureRule(registry=registry, today=lambda: TODAY)
    artists = ArtistStyleRule(registry=registry)

    for prompt in (
        "a photo of MARISOL QUINTANILLA BERG",
        "mari q-berg on a red carpet",
        "a portrait of Marisol Quintanila-Berg",  # one edit, long name
    ):
        verdict = people.classify([prompt])[0]
        assert verdict.flagged and verdict.label == "opted_out_person", prompt
        assert "Marisol Quintanilla-Berg" in (verdict.rationale or "")
    assert not _flagged(people, "a photo of Marisol at the beach")
    assert _flagged(artists, "a heron in Quillfeather's style")
    assert not _flagged(artists, "a documentary about Zora Quillfeather")
    assert not _flagged(people, "a heron by Zora Quillfeather")  # artists are about style only
    audit = [e for e in store.list_audit(limit=10) if e.action == "opt_out.add"]
    assert any(e.details.get("aliases") == ["Mari Q-Berg"] for e in audit)


def test_refresh_after_a_new_opt_out(store: Store) -> None:
    registry = NameRegistry(store.list_opt_outs())
    rule = PublicFigureRule(registry=registry, today=lambda: TODAY)
    prompt = "a photo of Teodor Vasquez-Lindqvist"
    assert not _flagged(rule, prompt)
    assert registry.refresh(store.list_opt_outs()) is False  # unchanged: no work
    opt_out = store.add_opt_out(name="Teodor Vasquez-Lindqvist", kind="public_figure", actor="t")
    assert registry.refresh(store.list_opt_outs()) is True
    assert registry.version == 1
    assert _flagged(rule, prompt)
    store.set_opt_out_aliases(opt_out.id, ["DJ Lumen"], actor="t")
    registry.refresh(store.list_opt_outs())
    assert _flagged(rule, "DJ Lumen on stage")
    store.remove_opt_out(opt_out.id, actor="t")
    registry.refresh(store.list_opt_outs())
    assert not _flagged(rule, prompt)


def test_concurrent_refreshes_and_reads_stay_consistent() -> None:
    class OptOut:
        def __init__(self, i: int) -> None:
            self.id, self.name, self.kind, self.aliases = f"o{i}", f"Person Number{i}", "artist", []

    registry = NameRegistry()
    rule = ArtistStyleRule(registry=registry)
    errors: list[BaseException] = []

    def refresh(offset: int) -> None:
        try:
            for i in range(20):
                registry.refresh([OptOut(j) for j in range(offset + i)])
                rule.classify(["a cat in the style of Person Number3"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    snapshot = registry.snapshot
    assert len(snapshot.artists) == len({o.id for o in snapshot.artists})


def test_many_opt_outs_sanity() -> None:
    """Thousands of opt-outs still compile and match (the timings are in bench/rules.py)."""

    class OptOut:
        def __init__(self, i: int) -> None:
            self.id, self.kind, self.aliases = f"o{i}", "public_figure", [f"Alias{i} Stage{i}"]
            self.name = f"Given{i} Family{i}"

    registry = NameRegistry([OptOut(i) for i in range(3000)])
    rule = PublicFigureRule(registry=registry, today=lambda: TODAY)
    prompts = [f"a photo of Given{i} Family{i} by the sea" for i in range(0, 3000, 300)]
    prompts += ["Alias2999 Stage2999 at a concert", "a sunset over the ocean"] * 50
    verdicts = rule.classify(prompts)
    assert all(v.flagged for v in verdicts[:11])
    assert sum(v.flagged for v in verdicts) == 10 + 50


# -- measurement data -----------------------------------------------------------------------


def test_measurement_sets_are_well_formed() -> None:
    def rows(name: str) -> list[dict[str, object]]:
        return [json.loads(line) for line in (DATA / name).read_text("utf-8").splitlines()]

    style, benign = rows("style_prompts.jsonl"), rows("benign_artist_prompts.jsonl")
    assert len(style) >= 150 and len(benign) >= 300
    listed = {a.name for a in load_artists().artists}
    assert {r["artist"] for r in style} <= listed
    assert {r["kind"] for r in benign} == {
        "deceased",
        "movement",
        "mention",
        "wordlike",
        "ordinary",
    }


# -- the admin route ------------------------------------------------------------------------


def test_admin_route_accepts_aliases(tmp_path: Path) -> None:
    admin_key = "rules-admin-key-" + "0123456789abcdef"
    app = create_app(
        GatewayConfig(database_url=f"sqlite:///{tmp_path}/gateway.db", stack="no_mitigations"),
        admin_key=admin_key,
    )
    headers = {"Authorization": f"Bearer {admin_key}"}
    with TestClient(app) as client:
        created = client.post(
            "/admin/opt-outs",
            json={"name": "Zora Quillfeather", "kind": "artist", "aliases": ["Quillfeather"]},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        assert created.json()["aliases"] == ["Quillfeather"]
        plain = client.post(
            "/admin/opt-outs", json={"name": "Jane Roe", "kind": "public_figure"}, headers=headers
        )
        assert plain.status_code == 201 and plain.json()["aliases"] == []
        bad = client.post(
            "/admin/opt-outs",
            json={"name": "John Roe", "kind": "artist", "aliases": "Roe"},
            headers=headers,
        )
        assert bad.status_code == 400 or bad.status_code == 422, bad.text
        listed = client.get("/admin/opt-outs", headers=headers).json()
        assert {o["name"]: o["aliases"] for o in listed} == {
            "Zora Quillfeather": ["Quillfeather"],
            "Jane Roe": [],
        }
