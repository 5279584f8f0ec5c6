"""The invoker: runs activations in containers.

`consumer.Invoker` consumes activation messages and completes them; `pool` decides and manages containers;
`containers` is the seam to where containers run (`open_factory`); `activation` runs one activation on a container;
`logs` formats activation logs.
"""

from invoker.consumer import Invoker

__all__ = ["Invoker"]
