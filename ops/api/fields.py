"""Input checks every API serializer shares: unknown fields are refused (a typo is never
silently ignored), numbers are JSON numbers, text is bounded and shows what was typed."""
from rest_framework import serializers

from ..textcheck import refuse_hidden

TEXT_MAX = 500  # as the start-a-run form's text fields (ops/views/runforms.py)


class StrictSerializer(serializers.Serializer):
    """A request body with a key the endpoint does not take is refused, naming the key."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in self.fields)
            if unknown:
                expected = ", ".join(n for n, f in self.fields.items() if not f.read_only) or "nothing"
                raise serializers.ValidationError(
                    {k[:60]: [f"unknown field; this endpoint takes {expected}"] for k in unknown[:10]})
        return super().to_internal_value(data)


class WholeNumberField(serializers.IntegerField):
    """A JSON integer: not "3", not 3.5, not true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A JSON string: not 5, not true (DRF's CharField would take them as "5", "True")."""

    default_error_messages = {"not_text": "must be a string (text in quotes), not {kind}"}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text", kind=type(data).__name__)
        return super().to_internal_value(data)


def check_text(value: str, field: str) -> str:
    """``value`` when it is at most TEXT_MAX characters without characters that hide or reorder text."""
    if len(value) > TEXT_MAX:
        raise serializers.ValidationError(f"{field} is {len(value)} characters long; at most {TEXT_MAX}")
    hidden = refuse_hidden(value, field)
    if hidden:
        raise serializers.ValidationError(hidden)
    return value
