"""Synthetic client cards, each a pure function of its index, so a million of them need no memory.

Card `i` is stored as client id `i + 1`. Phones are unique E.164 Russian mobile numbers
(+79xxxxxxxxx); callers the hub has never seen are cards with an index ≥ N, whose numbers are
disjoint from every prefilled one by construction.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from datetime import UTC, datetime

SEED = 0x5EED_C0DE
# 930 has unassigned sub-ranges that phonenumbers rejects; every other 9xx code is valid throughout
MOBILE_CODES = tuple(c for c in range(900, 1000) if c != 930)
SUBSCRIBERS = 10**7
_SPREAD = 3_794_741  # coprime with 10**7: index → subscriber number is a permutation
STATUSES = ("new", "new", "cold", "cold", "hot", "regular", "regular", "regular", "vip")
MANAGERS = 20
HISTORY_S = 730 * 86_400  # two years of cards

RU_MALE = (
    "Александр", "Алексей", "Андрей", "Антон", "Артём", "Борис", "Вадим", "Василий", "Виктор",
    "Владимир", "Дмитрий", "Евгений", "Иван", "Игорь", "Кирилл", "Константин", "Максим",
    "Михаил", "Николай", "Олег", "Павел", "Роман", "Сергей", "Степан", "Юрий", "Григорий",
)
RU_FEMALE = (
    "Анна", "Анастасия", "Валентина", "Вера", "Виктория", "Галина", "Дарья", "Екатерина",
    "Елена", "Ирина", "Ксения", "Людмила", "Марина", "Мария", "Наталья", "Нина", "Ольга",
    "Полина", "Светлана", "Софья", "Татьяна", "Юлия", "Алёна", "Евгения",
)
RU_SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
    "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв",
    "Сергеев", "Кузьмин", "Фролов", "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв",
    "Ильин", "Максимов", "Поляков", "Сорокин", "Виноградов", "Ковалёв", "Белов", "Медведев",
    "Антонов", "Тарасов", "Жуков", "Баранов", "Филиппов", "Комаров", "Давыдов", "Беляев",
    "Герасимов", "Богданов", "Осипов", "Сидоров", "Матвеев", "Титов", "Марков", "Миронов",
    "Крылов", "Куликов", "Карпов", "Власов", "Мельников", "Денисов", "Гаврилов", "Тихонов",
    "Казаков", "Афанасьев", "Данилов", "Савельев", "Тимофеев", "Фомин", "Чернов", "Абрамов",
    "Мартынов", "Ефимов", "Щербаков", "Назаров", "Калинин", "Исаев", "Быков", "Маслов",
    "Островский", "Вишневский", "Шевченко", "Бондаренко", "Руденко", "Литвинов", "Громов",
)
EN_FIRST = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Emma", "Oliver", "Sophia", "George", "Olivia", "Henry",
)
EN_SURNAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Wilson",
    "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White",
    "Harris", "Clark", "Lewis", "Walker", "Hall", "Allen", "Young", "King", "Wright", "Scott",
    "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter",
    "Phillips", "Evans", "Turner", "Parker", "Collins", "Edwards", "Stewart", "Morris", "Murphy",
    "Cook", "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell", "Kelly", "Howard",
)
COMPANIES = (
    "Ромашка", "Вектор", "Альфа-Строй", "ТехноСервис", "Северный ветер", "Гранит", "Меридиан",
    "Логистик Плюс", "Союз", "Орион", "Brightline", "Northwind", "Bluefield", "Acme Trading",
)
DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru", "outlook.com", "example.org")
_TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ("a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r",
     "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"),
    strict=True,
))


@dataclass(frozen=True, slots=True)
class Card:
    """One prefilled client with its identities and timestamps (UTC-aware)."""

    index: int
    name: str
    status: str
    phone: str
    email: str | None
    manager_id: int | None
    created_at: datetime
    activity_at: datetime
    last_interaction_at: datetime | None

    @property
    def id(self) -> int:
        return self.index + 1

    @property
    def search(self) -> str:
        """As hub.matching.search_text: the name and e-mails, lower-cased, one per line."""
        return "\n".join(w for w in (self.name, self.email) if w).lower()


def mix(value: int) -> int:
    """splitmix64: a cheap, well-spread 64-bit hash of an index."""
    z = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def phone_of(index: int) -> str:
    """The unique E.164 number of card `index` (any index below ~990 million).

    The subscriber part is a permutation of index mod 10**7 (so phone tails spread evenly);
    the operator code separates indexes that share that residue.
    """
    cycle, residue = divmod(index, SUBSCRIBERS)
    code = MOBILE_CODES[(cycle + mix(residue)) % len(MOBILE_CODES)]
    subscriber = (residue * _SPREAD + 1_234_567) % SUBSCRIBERS
    return f"+7{code}{subscriber:07d}"


def reversed_digits(e164: str) -> str:
    """As hub.identity.reversed_digits, for the "+digits" numbers made here."""
    return e164[:0:-1]


def card(index: int, total: int, now: datetime) -> Card:
    """Card `index` of a prefill of `total` cards created over the two years before `now`."""
    h = mix(index ^ SEED)
    name, latin = _name(h)
    # plain seconds, not timedelta arithmetic: this runs a million times in a prefill
    end = now.timestamp()
    created_s = min(end - HISTORY_S * (1 - index / max(total, 1)) + h % 86_400, end - 60)
    activity_s = min(created_s + 60 * ((h >> 20) % 43_200), end - 1)
    created = datetime.fromtimestamp(created_s, UTC)
    activity = datetime.fromtimestamp(activity_s, UTC)
    return Card(
        index=index,
        name=name,
        status=STATUSES[(h >> 40) % len(STATUSES)],
        phone=phone_of(index),
        email=f"{latin}{index}@{DOMAINS[(h >> 44) % len(DOMAINS)]}" if (h >> 48) % 2 else None,
        manager_id=1 + (h >> 52) % MANAGERS if (h >> 58) % 2 else None,
        created_at=created,
        activity_at=activity,
        last_interaction_at=activity if (h >> 60) % 5 else None,
    )


def _name(h: int) -> tuple[str, str]:
    """A display name and its Latin form for the e-mail's local part."""
    kind = h % 20
    first, last = (h >> 8) % 1000, (h >> 16) % 1000
    if kind == 0:
        company = COMPANIES[first % len(COMPANIES)]
        return f"ООО «{company}»", _latin(company).replace(" ", "").replace("-", "")
    if kind < 6:
        given, family = EN_FIRST[first % len(EN_FIRST)], EN_SURNAMES[last % len(EN_SURNAMES)]
        return f"{given} {family}", f"{given}.{family}".lower()
    female = kind % 2 == 0
    names = RU_FEMALE if female else RU_MALE
    given, family = names[first % len(names)], RU_SURNAMES[last % len(RU_SURNAMES)]
    family = _feminine(family) if female else family
    return f"{given} {family}", f"{_latin(given)}.{_latin(family)}"


def _feminine(surname: str) -> str:
    if surname.endswith("ский"):
        return surname[:-2] + "ая"
    if surname.endswith(("ов", "ев", "ёв", "ин")):
        return surname + "а"
    return surname


@functools.cache
def _latin(text: str) -> str:
    return "".join(_TRANSLIT.get(ch, ch) for ch in text.lower())


def written_forms(e164: str) -> list[str]:
    """Ways people and PBXs write the same Russian number."""
    d = e164[2:]
    a, b, c, e = d[:3], d[3:6], d[6:8], d[8:]
    return [
        e164, "7" + d, "8" + d, d, f"8 ({a}) {b}-{c}-{e}", f"+7 {a} {b}-{c}-{e}",
        f"+7 ({a}) {b} {c} {e}", f"8-{a}-{b}-{c}-{e}",
    ]


def other_form(e164: str, rng: random.Random) -> str:
    """A written form of the number other than its E.164 spelling."""
    return rng.choice(written_forms(e164)[1:])
