"""Every list of the API: ``{"count", "next", "previous", "results"}``."""
from rest_framework.pagination import PageNumberPagination


class Pages(PageNumberPagination):
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 200
    query_params = ("page", "page_size")
