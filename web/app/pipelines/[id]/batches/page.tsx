import { BatchView } from "@/components/batches/batch-view";

export default async function BatchesPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  return <BatchView pipelineId={id} />;
}
