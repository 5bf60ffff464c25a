"""Reading a provider's JSON into a pydantic model, with the hub's two kinds of error:
PayloadError (400) when it is not a JSON object at all, ValidationError (422) naming the
first field that is wrong."""

from __future__ import annotations

from typing import TypeVar

import pydantic

from hub.errors import PayloadError, ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)


def load_json(model: type[M], raw: str | bytes, label: str = "body") -> M:
    """The JSON validated against the model; `label` names it in messages ("body", "json")."""
    try:
        return model.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        if err["type"] == "json_invalid":
            raise PayloadError(f"{label} is not valid JSON: {err['msg']}") from None
        if err["type"] == "model_type" and not err["loc"]:
            raise PayloadError(f"{label} must be a JSON object") from None
        # fields named after Python keywords carry a trailing underscore (from_ ← "from")
        key = ".".join(str(p).removesuffix("_") for p in err["loc"])
        prefix = "" if label == "body" else f"{label}."
        raise ValidationError(f"{prefix}{key}: {err['msg']}") from None
