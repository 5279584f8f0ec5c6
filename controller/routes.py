"""Every route of the REST API, in one block."""

from aiohttp import web

from controller.api import actions, activations, info, namespaces, packages, rules, triggers
from controller.api import web as web_actions

NS = "/api/v1/namespaces/{namespace}"


def add_routes(app: web.Application) -> None:
    app.add_routes([
        web.get("/", info.platform_info),
        web.get("/api/v1", info.api_info),
        web.get("/api/v1/", info.api_info),
        web.get("/api/v1/namespaces", namespaces.list_namespaces),
        web.get(f"{NS}/limits", namespaces.get_limits),

        web.get(f"{NS}/actions", actions.list_actions),
        web.get(f"{NS}/actions/", actions.list_actions),
        web.get(f"{NS}/actions/{{package}}/", actions.list_actions),
        web.get(f"{NS}/actions/{{name}}", actions.get_action),
        web.put(f"{NS}/actions/{{name}}", actions.put_action),
        web.delete(f"{NS}/actions/{{name}}", actions.delete_action),
        web.post(f"{NS}/actions/{{name}}", actions.invoke_action),
        web.get(f"{NS}/actions/{{package}}/{{name}}", actions.get_action),
        web.put(f"{NS}/actions/{{package}}/{{name}}", actions.put_action),
        web.delete(f"{NS}/actions/{{package}}/{{name}}", actions.delete_action),
        web.post(f"{NS}/actions/{{package}}/{{name}}", actions.invoke_action),

        web.get(f"{NS}/activations", activations.list_activations),
        web.get(f"{NS}/activations/{{activation_id}}", activations.get_activation),
        web.get(f"{NS}/activations/{{activation_id}}/logs", activations.get_logs),
        web.get(f"{NS}/activations/{{activation_id}}/result", activations.get_result),

        web.get(f"{NS}/packages", packages.list_packages),
        web.get(f"{NS}/packages/", packages.list_packages),
        web.get(f"{NS}/packages/{{name}}", packages.get_package),
        web.put(f"{NS}/packages/{{name}}", packages.put_package),
        web.delete(f"{NS}/packages/{{name}}", packages.delete_package),
    ])
    # triggers, rules, web actions and API routes declare their own route tables
    app.add_routes(triggers.ROUTES)
    app.add_routes(rules.ROUTES)
    app.add_routes(web_actions.ROUTES)
