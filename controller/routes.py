"""Every route of the REST API, in one block."""

from aiohttp import web

from controller.api import actions, activations, info, namespaces

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
    ])
