"""The running household node: federation, contributions, committee work, results.

Import the pieces from their modules (``mpc_backend.node.node.Node`` etc.); this
package file stays empty so the CLI can read settings without loading the node.
"""
