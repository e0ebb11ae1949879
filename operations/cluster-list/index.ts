export {
  type ClusterListing,
  type ListedNode,
  listCluster,
  type NodeLeaseView,
  renderListing,
} from "./cluster-list.js";
