export { ClusterNode, type ClusterNodeOptions } from "./cluster-node.js";
