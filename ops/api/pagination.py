"""Every list of the API: ``{"count", "next", "previous", "results"}``."""
from rest_framework import exceptions
from rest_framework.pagination import PageNumberPagination


class Pages(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 200
    query_params = ("page", "page_size")
    invalid_page_message = "page {page_number}: {message}"

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise exceptions.ValidationError({self.page_size_query_param: [
                f"must be a whole number from 1 to {self.max_page_size}, not {raw[:40]!r}"]})
        return int(raw)
