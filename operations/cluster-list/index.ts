export { type ClusterListing, type ListedNode, listCluster, renderListing } from "./cluster-list.js";
