from django.urls import path

from discovery.web.variant_search import variant_search_results

app_name = "discovery"

urlpatterns = [
    path("variant-search", variant_search_results, name="variant-search"),
]
