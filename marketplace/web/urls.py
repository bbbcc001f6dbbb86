"""Web UI routes (server-rendered pages, htmx for partial updates)."""

from django.urls import path

from marketplace.web import files, views

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/register/", views.register, name="register"),
    path("files/", files.files_page, name="files"),
    path("files/table", files.files_table, name="files-table"),
]
